package telemetry

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendJSON writes e as one JSON line, byte for byte what log/slog's
// JSONHandler wrote for it before (the differential tests hold it to that),
// without slog's attribute slices, Record and deep handler frames.
func appendJSON(b []byte, e *Entry, t time.Time, path string) []byte {
	b = append(b, `{"time":`...)
	b = appendJSONTime(b, t)
	b = appendJSONField(b, `,"request_id":"`, e.RequestID)
	b = appendJSONField(b, `","trace_id":"`, e.TraceID)
	b = appendJSONField(b, `","span_id":"`, e.SpanID)
	b = appendJSONField(b, `","client_ip":"`, e.ClientIP)
	b = appendJSONField(b, `","method":"`, e.Method)
	b = appendJSONField(b, `","host":"`, e.Host)
	b = appendJSONField(b, `","path":"`, path)
	b = appendJSONField(b, `","proto":"`, e.Proto)
	b = appendJSONField(b, `","route":"`, e.Route)
	b = appendJSONField(b, `","upstream":"`, e.Upstream)
	b = appendJSONField(b, `","target":"`, e.Target)
	b = appendJSONField(b, `","consumer":"`, e.Consumer)
	b = appendJSONField(b, `","auth_method":"`, e.AuthMethod)
	b = appendJSONField(b, `","auth_error":"`, e.AuthError)
	b = appendJSONField(b, `","user_agent":"`, e.UserAgent)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, e.BytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, e.BytesOut, 10)
	b = append(b, `,"duration_ms":`...)
	b = appendJSONFloat(b, millis(e.Duration))
	b = append(b, `,"upstream_ms":`...)
	b = appendJSONFloat(b, millis(e.UpstreamDuration))
	b = appendJSONField(b, `,"cache_status":"`, e.CacheStatus)
	b = appendJSONField(b, `","rate_limit":"`, e.RateLimit)
	b = appendJSONField(b, `","error":"`, e.Error)
	return append(b, "\"}\n"...)
}

// appendJSONField writes prefix (the closing quote of the previous value,
// the key and the opening quote) and s escaped. Not inlined: 17 inlined
// copies made appendJSON's frame 568 bytes instead of 128, on the request's
// goroutine stack.
//
//go:noinline
func appendJSONField(b []byte, prefix, s string) []byte {
	return appendJSONString(append(b, prefix...), s)
}

// appendJSONTime writes t quoted as slog's JSON handler does: RFC 3339 with
// up to nanoseconds (trailing zeros trimmed), "Z" for a zero offset. For a
// year outside 0..9999 slog puts an error string before the time (not valid
// JSON, but that is the format the tests pin).
func appendJSONTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y >= 10000 {
		b = append(b, `"!ERROR:time.Time year outside of range [0,9999]"`...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendJSONFloat writes f as encoding/json.Marshal does (what slog calls
// for floats): ES6 number formatting, exponent form below 1e-6 and from
// 1e21 on, without a leading zero in the exponent. NaN and ±Inf cannot come
// from a Duration; they get slog's error string, as before.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		b = append(b, `"!ERROR:json: unsupported value: `...)
		b = strconv.AppendFloat(b, f, 'g', -1, 64)
		return append(b, '"')
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 -> e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONString escapes s as slog's appendEscapedJSONString does
// (encoding/json's rules without HTML escaping): '"', '\\' and control
// bytes escaped, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped so a
// line stays safe for JavaScript. It writes no quotes.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}
