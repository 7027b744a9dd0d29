// Package tlsconf builds the TLS configuration of a listener from its
// config.ListenerTLS: certificates chosen by SNI (exact names, then
// one-label wildcards, then the first certificate), ALPN h2 and http/1.1,
// a modern protocol policy (TLS 1.2 or 1.3 minimum; in TLS 1.2 only ECDHE
// key exchange with AES-GCM or ChaCha20-Poly1305), client certificates
// (none, request, require) checked against a CA bundle, certificate and CA
// reload when their files change, and OCSP stapling.
//
// A Manager owns that state. Handshakes read it through atomic pointers,
// so a reload never blocks or drops a connection: connections that are
// already up keep the certificate they were made with, new handshakes see
// the new one. Reloading, watching and OCSP refreshing happen in
// goroutines that Close stops.
//
//	m, err := tlsconf.New(l.TLS, log)
//	if err != nil { ... }            // the error names the file at fault
//	defer m.Close()
//	ln = tls.NewListener(ln, m.TLSConfig())
package tlsconf
