// Package hygiene holds the request-framing and protocol checks the
// gateway runs at the front of every request, for what net/http parses
// leniently or hides from handlers:
//
//   - MustClose: requests whose framing the handler can no longer see
//     (a chunked body, which may have arrived with a Content-Length that
//     net/http removed; any HTTP/1.0 request, whose Transfer-Encoding
//     net/http drops) are answered with the connection closed, so nothing
//     after them on that connection is ever read as a request.
//   - CheckUpgrade: a WebSocket upgrade must be a valid RFC 6455 opening
//     handshake (GET, HTTP/1.1, a 16-byte base64 Sec-WebSocket-Key,
//     Sec-WebSocket-Version 13) or it is refused before any upstream.
//   - WatchBody: body_read_timeout, the longest wait for the next bytes
//     of a request body, renewed on every read.
package hygiene
