//go:build race

package h1

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// a test cannot count on a pooled item coming back.
const raceEnabled = true
