package main

// The compact forms of --rate-limit and --quota on `portunus consumers
// create|update`. They are checked here so a typo is a usage error with
// the expected form; the admin API still validates what it receives
// (time zones, bounds) and its detail is printed when it refuses.

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

const (
	rateLimitForm = "[NAME=]LIMIT/WINDOW[:BY[:BURST]], e.g. 100/1m:consumer:20"
	quotaForm     = "LIMIT/PERIOD[:BY[:TIME_ZONE]], e.g. 10000/month:consumer:Europe/Paris"
	byForm        = "consumer, ip, route or header:NAME"
)

// rateLimitSpec is consumers[].rate_limits[] as the admin API takes it.
type rateLimitSpec struct {
	Name   string `json:"name,omitempty"`
	Limit  int    `json:"limit"`
	Window string `json:"window"`
	By     string `json:"by,omitempty"`
	Burst  int    `json:"burst,omitempty"`
}

// quotaSpec is consumers[].quotas[] as the admin API takes it.
type quotaSpec struct {
	Limit    int    `json:"limit"`
	Period   string `json:"period"`
	By       string `json:"by,omitempty"`
	TimeZone string `json:"time_zone,omitempty"`
}

// splitLimit cuts "LIMIT/REST" and parses LIMIT as a whole number >= 1.
func splitLimit(s string) (int, string, error) {
	ls, rest, ok := strings.Cut(s, "/")
	if !ok {
		return 0, "", fmt.Errorf("no '/' between the limit and the %s", "window or period")
	}
	n, err := strconv.Atoi(ls)
	if err != nil || n < 1 {
		return 0, "", fmt.Errorf("limit %q: want a whole number of at least 1", ls)
	}
	return n, rest, nil
}

// takeBy reads the optional BY from parts (a header:NAME takes two) and
// returns it with what follows it.
func takeBy(parts []string) (string, []string, error) {
	if len(parts) == 0 {
		return "", nil, nil
	}
	switch by := parts[0]; by {
	case "consumer", "ip", "route":
		return by, parts[1:], nil
	case "header":
		if len(parts) < 2 || parts[1] == "" || strings.ContainsFunc(parts[1], isBlankOrCtl) {
			return "", nil, fmt.Errorf("by header: want header:NAME")
		}
		return "header:" + parts[1], parts[2:], nil
	case "":
		return "", nil, fmt.Errorf("empty by: want %s", byForm)
	default:
		return "", nil, fmt.Errorf("by %q: want %s", by, byForm)
	}
}

func isBlankOrCtl(r rune) bool { return r <= ' ' || r == 0x7f }

// parseRateLimit reads [NAME=]LIMIT/WINDOW[:BY[:BURST]].
func parseRateLimit(s string) (rateLimitSpec, error) {
	var rl rateLimitSpec
	fail := func(err error) (rateLimitSpec, error) {
		return rateLimitSpec{}, fmt.Errorf("--rate-limit %q: %v; want %s", s, err, rateLimitForm)
	}
	body := s
	if name, rest, ok := strings.Cut(s, "="); ok {
		if !validLimitName(name) {
			return fail(fmt.Errorf("name %q: letters, digits and -._@, starting with a letter or digit", name))
		}
		rl.Name, body = name, rest
	}
	parts := strings.Split(body, ":")
	n, window, err := splitLimit(parts[0])
	if err != nil {
		return fail(err)
	}
	d, err := time.ParseDuration(window)
	if err != nil || d <= 0 {
		return fail(fmt.Errorf("window %q: want a positive duration such as 1s, 1m or 1h", window))
	}
	rl.Limit, rl.Window = n, window
	by, rest, err := takeBy(parts[1:])
	if err != nil {
		return fail(err)
	}
	rl.By = by
	switch len(rest) {
	case 0:
	case 1:
		b, err := strconv.Atoi(rest[0])
		if err != nil || b < 1 {
			return fail(fmt.Errorf("burst %q: want a whole number of at least 1", rest[0]))
		}
		rl.Burst = b
	default:
		return fail(fmt.Errorf("too many parts after the window"))
	}
	return rl, nil
}

// parseQuota reads LIMIT/PERIOD[:BY[:TIME_ZONE]].
func parseQuota(s string) (quotaSpec, error) {
	var q quotaSpec
	fail := func(err error) (quotaSpec, error) {
		return quotaSpec{}, fmt.Errorf("--quota %q: %v; want %s", s, err, quotaForm)
	}
	parts := strings.Split(s, ":")
	n, period, err := splitLimit(parts[0])
	if err != nil {
		return fail(err)
	}
	switch period {
	case "day", "week", "month":
	default:
		return fail(fmt.Errorf("period %q: want day, week or month", period))
	}
	q.Limit, q.Period = n, period
	by, rest, err := takeBy(parts[1:])
	if err != nil {
		return fail(err)
	}
	q.By = by
	switch len(rest) {
	case 0:
	case 1:
		// The gateway checks the name against its time zone database.
		if rest[0] == "" || strings.ContainsFunc(rest[0], isBlankOrCtl) {
			return fail(fmt.Errorf("time zone %q: want an IANA name such as UTC or Europe/Paris", rest[0]))
		}
		q.TimeZone = rest[0]
	default:
		return fail(fmt.Errorf("too many parts after the period"))
	}
	return q, nil
}

// validLimitName is the admin API's rule for rate-limit names.
func validLimitName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if alnum || i > 0 && strings.IndexByte("-._@", c) >= 0 {
			continue
		}
		return false
	}
	return true
}
