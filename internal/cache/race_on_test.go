//go:build race

package cache

// raceEnabled: the race detector makes sync.Pool drop items, so the key
// buffers of the hit path are allocated now and then under -race.
const raceEnabled = true
