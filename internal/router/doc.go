// Package router normalizes request paths and hosts and matches requests
// to routes.
//
// # Normalization
//
// Normalize runs once per request, before matching; its output is what
// routes match, what policies see and what is sent upstream. It decodes
// percent-encoded unreserved characters (%41 is A), upper-cases the hex of
// every other escape, percent-encodes raw bytes that may not appear in a
// path, merges runs of '/', and resolves "." and ".." segments (also
// encoded ones) without ever climbing above "/". %2F, %5C and %00 stay
// encoded and are reported, as is a raw '\' (turned into %5C), so the
// gateway can refuse them unless the route allows encoded slashes: an
// upstream that decodes them would otherwise see a different path than
// the one that was matched. Invalid escapes and control bytes are errors.
// A path that is already normal is returned as is, without allocating.
//
// NormalizeHost lower-cases a Host value and strips its port, one trailing
// dot and IPv6 brackets.
//
// # Specificity
//
// New compiles routes (their paths normalized by the same rules) into one
// table per host tier. Match tries the tiers from the most specific down:
// the exact host, then wildcard hosts ("*.example.com": one or more labels
// before the suffix) longest suffix first, then routes without hosts.
// Within a tier the candidates whose path matches are tried in this order:
//
//  1. exact path;
//  2. path with {param} segments, found by a depth-first walk of a segment
//     trie that tries the literal child before the param child, so literal
//     segments beat params position by position (/u/me, /u/{id}, /{a}/{b});
//  3. path_prefix, longest first, on whole segments (/api matches /api and
//     /api/x, never /api-internal);
//  4. path_regex, in file order.
//
// Equally specific candidates (same path, same prefix, same regex) are
// ordered by their number of constraints (a methods list counts one, each
// header one), more first, then by file order. The first candidate whose
// headers and method also match wins. A tier whose candidates all fail
// falls through to the next, so a less specific route that matches fully
// beats a 405. Only when nothing matches does Match report
// MethodNotAllowed, if some candidate failed on its method alone, and
// NotFound otherwise.
//
// Everything Match needs is computed by New; Match itself does not
// allocate (regex routes with named groups allocate once, in package
// regexp, when they win).
package router
