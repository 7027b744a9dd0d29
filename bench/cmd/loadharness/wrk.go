package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what the harness reads from wrk's text report (wrk run with
// --latency). Latencies are microseconds, as wrk measures them.
type wrkResult struct {
	RequestsPerSec float64 `json:"requests_per_sec"`
	P50us          float64 `json:"p50_us"`
	P75us          float64 `json:"p75_us"`
	P90us          float64 `json:"p90_us"`
	P99us          float64 `json:"p99_us"`
	Requests       int64   `json:"requests"`
	DurationSec    float64 `json:"duration_sec"`
	ErrConnect     int64   `json:"socket_errors_connect"`
	ErrRead        int64   `json:"socket_errors_read"`
	ErrWrite       int64   `json:"socket_errors_write"`
	ErrTimeout     int64   `json:"socket_errors_timeout"`
	Non2xx3xx      int64   `json:"non_2xx_3xx"`
}

// wrkArgs builds the wrk command line for one run.
func wrkArgs(wrk string, threads, conns int, dur time.Duration, closeConn bool, headers []string, url string) []string {
	args := []string{
		wrk,
		"-t" + strconv.Itoa(threads),
		"-c" + strconv.Itoa(conns),
		"-d" + strconv.Itoa(wholeSeconds(dur)) + "s",
		"--latency",
		"--timeout", "10s",
	}
	if closeConn {
		// wrk reconnects after each response when the server honours this,
		// which measures the new-connection rate.
		args = append(args, "-H", "Connection: close")
	}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	return append(args, url)
}

// wholeSeconds rounds d up to whole seconds, at least 1: wrk's -d takes
// seconds.
func wholeSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	return max(s, 1)
}

// parseWrkOutput reads wrk's report. Requests/sec, the request count and
// the 50th and 99th latency percentiles are required; socket errors and the
// non-2xx/3xx count are optional lines that wrk prints only when non-zero.
func parseWrkOutput(out string) (wrkResult, error) {
	var r wrkResult
	var haveRPS, haveTotal, haveP50, haveP99 bool
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "Requests/sec:"):
			v, err := parseNonNegFloat(strings.TrimSpace(strings.TrimPrefix(line, "Requests/sec:")))
			if err != nil {
				return r, fmt.Errorf("wrk: Requests/sec: %w", err)
			}
			r.RequestsPerSec, haveRPS = v, true
		case strings.Contains(line, " requests in "):
			// "800000 requests in 10.00s, 150.00MB read"
			countStr, rest, _ := strings.Cut(line, " requests in ")
			n, err := strconv.ParseInt(strings.TrimSpace(countStr), 10, 64)
			if err != nil || n < 0 {
				return r, fmt.Errorf("wrk: request count in %q", line)
			}
			durStr, _, _ := strings.Cut(rest, ",")
			d, err := parseWrkTime(strings.TrimSpace(durStr), "s")
			if err != nil {
				return r, fmt.Errorf("wrk: duration in %q: %w", line, err)
			}
			r.Requests, r.DurationSec, haveTotal = n, d/1e6, true
		case strings.HasPrefix(line, "Socket errors:"):
			if err := parseSocketErrors(strings.TrimPrefix(line, "Socket errors:"), &r); err != nil {
				return r, err
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "Non-2xx or 3xx responses:")), 10, 64)
			if err != nil || n < 0 {
				return r, fmt.Errorf("wrk: malformed %q", line)
			}
			r.Non2xx3xx = n
		default:
			pct, val, ok := cutPercentileLine(line)
			if !ok {
				continue
			}
			us, err := parseWrkTime(val, "us")
			if err != nil {
				return r, fmt.Errorf("wrk: %s%% latency: %w", pct, err)
			}
			switch pct {
			case "50":
				r.P50us, haveP50 = us, true
			case "75":
				r.P75us = us
			case "90":
				r.P90us = us
			case "99":
				r.P99us, haveP99 = us, true
			}
		}
	}
	var missing []string
	for _, m := range []struct {
		ok   bool
		name string
	}{{haveRPS, "Requests/sec"}, {haveTotal, "request count"}, {haveP50, "50% latency"}, {haveP99, "99% latency (was --latency given?)"}} {
		if !m.ok {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return r, errors.New("wrk: output lacks " + strings.Join(missing, ", "))
	}
	return r, nil
}

// cutPercentileLine recognises a latency-distribution line, "50%  580.00us",
// returning the percentile and the value.
func cutPercentileLine(line string) (pct, val string, ok bool) {
	f := strings.Fields(line)
	if len(f) != 2 || !strings.HasSuffix(f[0], "%") {
		return "", "", false
	}
	pct = strings.TrimSuffix(f[0], "%")
	switch pct {
	case "50", "75", "90", "99":
		return pct, f[1], true
	}
	return "", "", false
}

// parseSocketErrors reads "connect 0, read 1, write 0, timeout 2".
func parseSocketErrors(s string, r *wrkResult) error {
	for part := range strings.SplitSeq(s, ",") {
		f := strings.Fields(part)
		if len(f) != 2 {
			return fmt.Errorf("wrk: malformed socket errors %q", s)
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("wrk: malformed socket errors %q", s)
		}
		switch f[0] {
		case "connect":
			r.ErrConnect = n
		case "read":
			r.ErrRead = n
		case "write":
			r.ErrWrite = n
		case "timeout":
			r.ErrTimeout = n
		}
	}
	return nil
}

// wrkTimeUnits are wrk's time suffixes, longest first so "ms" and "us" are
// tried before "s" and "m", with their size in microseconds.
var wrkTimeUnits = []struct {
	suffix string
	us     float64
}{{"us", 1}, {"ms", 1e3}, {"s", 1e6}, {"m", 60e6}, {"h", 3600e6}}

// parseWrkTime parses a wrk time such as "620.12us", "1.50ms", "2.00s" or
// "1.00m" into microseconds. A bare number is taken in bareUnit.
func parseWrkTime(s, bareUnit string) (float64, error) {
	for _, u := range wrkTimeUnits {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := parseNonNegFloat(num)
			if err != nil {
				return 0, fmt.Errorf("time %q: %w", s, err)
			}
			return v * u.us, nil
		}
	}
	v, err := parseNonNegFloat(s)
	if err != nil {
		return 0, fmt.Errorf("time %q: %w", s, err)
	}
	for _, u := range wrkTimeUnits {
		if u.suffix == bareUnit {
			return v * u.us, nil
		}
	}
	return v, nil
}

// parseNonNegFloat accepts only finite, non-negative decimal numbers (no
// NaN, Inf or hex floats that strconv would otherwise allow).
func parseNonNegFloat(s string) (float64, error) {
	if s == "" || strings.ContainsAny(s, "xXpPnNiI_") {
		return 0, fmt.Errorf("not a decimal number: %q", s)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	if v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("out of range: %q", s)
	}
	return v, nil
}
