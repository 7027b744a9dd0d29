// Package dashboard tests the dashboard at /ui/ in a real browser: a live
// gateway with real upstreams and steady traffic, driven by a Node script
// (playwright-core with Debian's /usr/bin/chromium, and axe-core). See
// docs/dashboard.md.
package dashboard
