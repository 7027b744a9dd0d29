// Package cors is the cors policy: cross-origin resource sharing as the
// Fetch standard defines it, answered by the gateway.
//
//	cors:
//	  origins: ["https://app.example.com", "https://*.example.com"]
//	  methods: [GET, POST]
//	  headers: [Authorization, Content-Type]
//	  credentials: true
//	  max_age: 10m
//
// Origins. An exact origin matches scheme, host and port; scheme and host
// compare case-insensitively and a default port (:80 for http, :443 for
// https) is the same as none. "https://*.example.com" matches one or more
// labels under example.com with the same scheme and port, never the apex
// example.com itself. "*" matches any origin and is answered with a literal
// "*" (never combined with credentials; config validation refuses it). The
// "null" origin (sandboxed frames, file: pages) matches only "*".
//
// Preflights (OPTIONS with Origin and Access-Control-Request-Method; the
// router matched the route with the requested method) never reach the
// upstream. From an allowed origin they are answered 204 with
// Access-Control-Allow-Origin, -Allow-Methods (the configured methods, or,
// when none are configured, the requested one, which the route accepts),
// -Allow-Headers (the configured list, never the requested headers echoed:
// with no list only CORS-safelisted headers may be sent), -Allow-Credentials
// and -Max-Age. The browser compares its request with these lists and
// refuses what they do not hold. From any other origin the gateway answers
// 403 problem+json "forbidden", so the refusal is visible in the access log.
//
// Other requests pass through. When their Origin is allowed the answer gets
// Access-Control-Allow-Origin (and -Allow-Credentials); requests from other
// origins are not refused (browsers send Origin on same-origin POSTs too),
// they just get no grant. On a CORS route the gateway owns the CORS answer
// headers: the upstream's Access-Control-Allow-Origin, -Allow-Credentials,
// -Allow-Methods, -Allow-Headers and -Max-Age are removed from every answer
// (its -Expose-Headers is kept: there is no key to configure it here), and
// every answer, with or without Origin, varies by Origin (merged into the
// upstream's Vary).
//
// Everything that can be is computed in New; an allowed request costs a
// map lookup and a pooled response-writer wrapper.
package cors
