//go:build race

package ratelimit

// raceEnabled: allocation counts differ under the race detector.
const raceEnabled = true
