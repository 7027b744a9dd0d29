//go:build race

package gateway

// raceEnabled: the race detector makes compiling large configs several
// times slower, so tests that do it repeatedly do it fewer times.
const raceEnabled = true
