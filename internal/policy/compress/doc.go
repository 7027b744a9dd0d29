// Package compress compresses responses for clients that accept it: the
// route key compression{min_bytes, types, algorithms}.
//
// The algorithm is negotiated from Accept-Encoding with q-values (RFC 9110
// §12.5.3): the highest q among the configured algorithms (zstd, br,
// gzip) wins, ties go to the configured order, "*" stands for every
// algorithm the client did not name, q=0 excludes, and an explicit
// identity preferred over every algorithm means no compression.
//
// An answer is compressed when its Content-Type is one of the configured
// types ("text/*" families and "application/*+json" suffix patterns,
// parameters ignored), it carries no Content-Encoding and no
// Cache-Control: no-transform, its status is not 1xx, 204, 206 or 304, it
// has no Content-Range, the request is not HEAD, and it is at least
// min_bytes long. The length comes from Content-Length; without one the
// first min_bytes are buffered before deciding, and a Flush from the
// handler (an event stream, or the proxy streaming a body of unknown
// length) ends the wait and compresses. A compressed answer loses its
// Content-Length and Accept-Ranges, its strong ETag becomes weak, and
// every answer eligible by type gets Vary: Accept-Encoding.
//
// Example:
//
//	routes:
//	  - match: { path_prefix: /api/ }
//	    upstream: api
//	    compression: { min_bytes: 1KiB, algorithms: [zstd, br, gzip] }
package compress
