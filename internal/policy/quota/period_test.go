package quota

import (
	"testing"
	"time"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%s): %v", name, err)
	}
	return loc
}

func TestPeriodBounds(t *testing.T) {
	t.Parallel()
	paris := mustLoc(t, "Europe/Paris")
	ny := mustLoc(t, "America/New_York")
	cases := []struct {
		name       string
		period     period
		loc        *time.Location
		now        time.Time
		start, end time.Time
		length     time.Duration
	}{
		{"day utc", periodDay, time.UTC, time.Date(2026, 5, 4, 13, 0, 0, 0, time.UTC),
			time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 5, 0, 0, 0, 0, time.UTC), 24 * time.Hour},
		{"day at exact midnight belongs to the new day", periodDay, time.UTC, time.Date(2026, 5, 5, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 5, 5, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 6, 0, 0, 0, 0, time.UTC), 24 * time.Hour},
		{"day paris spring forward is 23h", periodDay, paris, time.Date(2026, 3, 29, 12, 0, 0, 0, paris),
			time.Date(2026, 3, 29, 0, 0, 0, 0, paris), time.Date(2026, 3, 30, 0, 0, 0, 0, paris), 23 * time.Hour},
		{"day paris fall back is 25h", periodDay, paris, time.Date(2026, 10, 25, 12, 0, 0, 0, paris),
			time.Date(2026, 10, 25, 0, 0, 0, 0, paris), time.Date(2026, 10, 26, 0, 0, 0, 0, paris), 25 * time.Hour},
		{"day paris seen from utc evening", periodDay, paris, time.Date(2026, 5, 4, 22, 30, 0, 0, time.UTC), // 00:30 on the 5th in Paris
			time.Date(2026, 5, 5, 0, 0, 0, 0, paris), time.Date(2026, 5, 6, 0, 0, 0, 0, paris), 24 * time.Hour},
		{"day new york", periodDay, ny, time.Date(2026, 5, 5, 3, 0, 0, 0, time.UTC), // 23:00 on the 4th in New York
			time.Date(2026, 5, 4, 0, 0, 0, 0, ny), time.Date(2026, 5, 5, 0, 0, 0, 0, ny), 24 * time.Hour},
		{"week from sunday", periodWeek, time.UTC, time.Date(2026, 11, 29, 23, 59, 0, 0, time.UTC),
			time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), 7 * 24 * time.Hour},
		{"week from monday", periodWeek, time.UTC, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), 7 * 24 * time.Hour},
		{"week across a year end", periodWeek, time.UTC, time.Date(2027, 1, 1, 8, 0, 0, 0, time.UTC), // a Friday
			time.Date(2026, 12, 28, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC), 7 * 24 * time.Hour},
		{"week paris with dst", periodWeek, paris, time.Date(2026, 3, 28, 10, 0, 0, 0, paris),
			time.Date(2026, 3, 23, 0, 0, 0, 0, paris), time.Date(2026, 3, 30, 0, 0, 0, 0, paris), 7*24*time.Hour - time.Hour},
		{"month january 31", periodMonth, time.UTC, time.Date(2028, 1, 31, 23, 59, 59, 0, time.UTC),
			time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2028, 2, 1, 0, 0, 0, 0, time.UTC), 31 * 24 * time.Hour},
		{"month leap february", periodMonth, time.UTC, time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC),
			time.Date(2028, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC), 29 * 24 * time.Hour},
		{"month december rolls the year", periodMonth, time.UTC, time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), 31 * 24 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start, end := tc.period.bounds(tc.now, tc.loc)
			if !start.Equal(tc.start) || !end.Equal(tc.end) {
				t.Errorf("bounds(%s): got [%s, %s); want [%s, %s)", tc.now, start, end, tc.start, tc.end)
			}
			if got := end.Sub(start); got != tc.length {
				t.Errorf("length: got %s; want %s", got, tc.length)
			}
		})
	}
}

func TestCeilSeconds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		d    time.Duration
		want int64
	}{
		{"zero is one", 0, 1},
		{"negative is one", -time.Second, 1},
		{"a nanosecond is one", 1, 1},
		{"exact", 5 * time.Second, 5},
		{"rounds up", 5*time.Second + time.Millisecond, 6},
	}
	for _, tc := range cases {
		if got := ceilSeconds(tc.d); got != tc.want {
			t.Errorf("%s: ceilSeconds(%s): got %d; want %d", tc.name, tc.d, got, tc.want)
		}
	}
}
