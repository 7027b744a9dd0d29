package cors

import (
	"net/http"
	"strings"
)

// writer decorates the answer of a non-preflight request on a CORS route
// when its header is sent: the upstream's CORS grant is replaced by the
// gateway's, and Vary gains Origin. It is pooled per policy.
type writer struct {
	p     *policy
	w     http.ResponseWriter
	allow []string // Allow-Origin value; nil: origin absent or refused
	wrote bool
}

func (w *writer) reset(rw http.ResponseWriter, allow []string) {
	w.w, w.allow, w.wrote = rw, allow, false
}

// finish drops the references to the request so the pool holds nothing.
func (w *writer) finish() { w.w, w.allow = nil, nil }

func (w *writer) Header() http.Header { return w.w.Header() }

// Unwrap lets http.ResponseController reach the server's writer (hijack
// for WebSocket, deadlines, full duplex).
func (w *writer) Unwrap() http.ResponseWriter { return w.w }

func (w *writer) WriteHeader(code int) {
	if w.wrote {
		w.w.WriteHeader(code) // let net/http report the superfluous call
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.w.WriteHeader(code) // informational: the real answer follows
		return
	}
	w.wrote = true
	w.decorate(w.w.Header())
	w.w.WriteHeader(code)
}

// decorate applies the policy to the final answer's header h.
func (w *writer) decorate(h http.Header) {
	delete(h, hAllowOrigin)
	delete(h, hAllowCredentials)
	delete(h, hAllowMethods)
	delete(h, hAllowHeaders)
	delete(h, hMaxAge)
	if w.allow != nil {
		h[hAllowOrigin] = w.allow
		if w.p.credentials {
			h[hAllowCredentials] = valTrue
		}
	}
	addVaryOrigin(h)
}

// addVaryOrigin merges Origin into Vary unless it is there or Vary is "*".
func addVaryOrigin(h http.Header) {
	v := h[hVary]
	if len(v) == 0 {
		h[hVary] = valVaryOrigin
		return
	}
	if hasToken(v, "origin") || hasToken(v, "*") {
		return
	}
	h[hVary] = append(v, "Origin")
}

// hasToken reports whether the comma-separated lists vals hold tok
// (lower-case), case-insensitively.
func hasToken(vals []string, tok string) bool {
	for _, v := range vals {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(item), tok) {
				return true
			}
		}
	}
	return false
}

func (w *writer) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.w.Write(b)
}

// Flush sends the header first if needed, so a streamed answer is
// decorated too.
func (w *writer) Flush() { _ = w.FlushError() }

// FlushError is Flush for http.ResponseController.
func (w *writer) FlushError() error {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(w.w).Flush()
}
