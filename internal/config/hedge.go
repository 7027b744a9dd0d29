package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultHedgeMin is hedge.min when after is a percentile: the shortest
// wait before a hedge, however fast the upstream's percentile is.
const DefaultHedgeMin = Duration(time.Millisecond)

// Percentile bounds of hedge.after.
const (
	MinHedgePercentile = 50.0
	MaxHedgePercentile = 99.9
)

// HedgeDelay is hedge.after: a fixed duration ("50ms") or a percentile
// of the upstream's recently observed response-header latency ("p95",
// "p99.9"). The zero value is neither.
type HedgeDelay struct {
	// Duration is the fixed wait; 0 when Percentile is set.
	Duration Duration
	// Percentile is 50-99.9 when after is a percentile; 0 otherwise.
	Percentile float64
}

// IsZero reports an unset (or zero) delay.
func (h HedgeDelay) IsZero() bool { return h.Duration == 0 && h.Percentile == 0 }

// String formats h as it is written: "50ms" or "p95".
func (h HedgeDelay) String() string {
	if h.Percentile > 0 {
		return "p" + strconv.FormatFloat(h.Percentile, 'f', -1, 64)
	}
	return h.Duration.String()
}

// MarshalJSON writes h as its config spelling ("50ms", "p95").
func (h HedgeDelay) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(h.String())), nil }

// ParseHedgeDelay parses hedge.after: a Go duration, or p followed by a
// percentile from 50 to 99.9.
func ParseHedgeDelay(s string) (HedgeDelay, error) {
	t := strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(t, "p"); ok {
		pct, err := strconv.ParseFloat(rest, 64)
		if err != nil || rest == "" || strings.ContainsAny(rest, "+-eEinfINFxX_") {
			return HedgeDelay{}, fmt.Errorf("invalid percentile %q: want p followed by 50 to 99.9, e.g. p95", s)
		}
		if pct < MinHedgePercentile || pct > MaxHedgePercentile {
			return HedgeDelay{}, fmt.Errorf("percentile %q is out of range: use p50 to p99.9", s)
		}
		return HedgeDelay{Percentile: pct}, nil
	}
	if t != "0" {
		if _, err := strconv.ParseFloat(t, 64); err == nil {
			return HedgeDelay{}, fmt.Errorf("%q has no unit: use a duration such as 50ms, or a percentile such as p95", s)
		}
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return HedgeDelay{}, fmt.Errorf("invalid value %q: use a duration such as 50ms, or a percentile of the upstream's latency such as p95", s)
	}
	if d < 0 {
		return HedgeDelay{}, fmt.Errorf("duration %q must not be negative", s)
	}
	return HedgeDelay{Duration: Duration(d)}, nil
}
