// Package upstreams holds end-to-end tests of upstream resilience through
// a real gateway: a fault matrix (targets that are killed, hung, reset
// connections, answer 5xx or answer slowly) under concurrent load, and
// traffic splitting, mirroring and DNS discovery wired from a config file.
package upstreams
