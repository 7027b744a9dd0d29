//go:build race

package h1

// raceEnabled: the race detector makes sync.Pool drop items, so code that
// relies on a pool (package regexp) allocates more under -race.
const raceEnabled = true
