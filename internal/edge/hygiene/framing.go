package hygiene

import "net/http"

// MustClose reports whether the connection must be closed after answering
// r, because r's framing is one a smuggling attack could hide behind and
// the handler cannot tell the innocent form from the hostile one.
//
// net/http serves a request carrying both Content-Length and
// Transfer-Encoding: chunked by the chunked coding, deletes both headers
// and keeps the connection open; a proxy in front of the gateway that
// framed the same bytes by Content-Length would disagree about where the
// next request starts. The handler sees only TransferEncoding ==
// ["chunked"], the same as for a plain chunked request, so every HTTP/1.x
// request with a chunked body closes its connection (RFC 9112 §6.3 asks
// this for CL+TE; chunked request bodies are rare enough that the cost is
// negligible).
//
// For HTTP/1.0, net/http drops any Transfer-Encoding header unread; RFC
// 9112 §6.1 says such a message's framing is faulty and the connection
// must close after it. The handler cannot see the header, so every
// HTTP/1.0 request closes its connection (HTTP/1.0 keep-alive is legacy).
//
// HTTP/2 and later frame bodies themselves and never need this.
func MustClose(r *http.Request) bool {
	if r.ProtoMajor != 1 {
		return false
	}
	if r.ProtoMinor == 0 {
		return true
	}
	te := r.TransferEncoding
	return len(te) > 0 && te[0] == "chunked"
}
