package quota

import (
	"fmt"
	"time"
)

// period is a calendar period kind.
type period uint8

const (
	periodDay period = iota
	periodWeek
	periodMonth
)

func parsePeriod(s string) (period, error) {
	switch s {
	case "day":
		return periodDay, nil
	case "week":
		return periodWeek, nil
	case "month":
		return periodMonth, nil
	}
	return 0, fmt.Errorf("quota: unknown period %q (want day, week or month)", s)
}

// tag is the period's letter in counter keys.
func (p period) tag() byte { return "dwm"[p] }

func (p period) String() string { return [...]string{"day", "week", "month"}[p] }

// bounds returns the start and end of the period holding now, in loc.
// Starts are local midnights computed with time.Date, which normalises
// days that do not begin at 00:00 (a DST jump at midnight) to the first
// instant that exists, so a day is 23, 24 or 25 hours long as the calendar
// says. Weeks are ISO weeks, starting on Monday.
func (p period) bounds(now time.Time, loc *time.Location) (start, end time.Time) {
	y, m, d := now.In(loc).Date()
	switch p {
	case periodWeek:
		back := (int(now.In(loc).Weekday()) + 6) % 7 // days since Monday
		start = time.Date(y, m, d-back, 0, 0, 0, 0, loc)
		end = time.Date(y, m, d-back+7, 0, 0, 0, 0, loc)
	case periodMonth:
		start = time.Date(y, m, 1, 0, 0, 0, 0, loc)
		end = time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	default:
		start = time.Date(y, m, d, 0, 0, 0, 0, loc)
		end = time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	}
	return start, end
}

// ceilSeconds is d in whole seconds rounded up, at least 1: what
// Retry-After and the t parameter carry.
func ceilSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		return 1
	}
	return s
}
