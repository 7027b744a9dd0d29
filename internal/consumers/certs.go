package consumers

import (
	"crypto/x509"
	"strings"
)

// ByCertificate returns the consumer a verified client certificate names:
// first by its subject DN (RFC 2253 form, e.g. "CN=dev,O=Acme"), then by
// each SAN (DNS names, e-mail addresses, URIs, IP addresses), or nil.
func (d *Directory) ByCertificate(cert *x509.Certificate) *Consumer {
	if cert == nil {
		return nil
	}
	if c := certLookup(cert, d.bySubject, d.bySAN); c != nil {
		return c
	}
	if ix := d.runtime(); ix != nil {
		// Config wins: a runtime consumer shadowed by a config one of
		// the same name is no one.
		if c := certLookup(cert, ix.bySubject, ix.bySAN); c != nil && d.byName[c.Name] == nil {
			return c
		}
	}
	return nil
}

func certLookup(cert *x509.Certificate, bySubject, bySAN map[string]*Consumer) *Consumer {
	if len(bySubject) > 0 {
		if c := bySubject[normalizeDN(cert.Subject.String())]; c != nil {
			return c
		}
	}
	if len(bySAN) == 0 {
		return nil
	}
	for _, n := range cert.DNSNames {
		if c := bySAN[normalizeSAN(n)]; c != nil {
			return c
		}
	}
	for _, n := range cert.EmailAddresses {
		if c := bySAN[n]; c != nil {
			return c
		}
	}
	for _, u := range cert.URIs {
		if c := bySAN[u.String()]; c != nil {
			return c
		}
	}
	for _, ip := range cert.IPAddresses {
		if c := bySAN[ip.String()]; c != nil {
			return c
		}
	}
	return nil
}

// normalizeDN puts a distinguished name written by hand in the form Go
// prints a certificate's subject: attribute types upper-case, no blanks
// around the separators. Escaped commas ("\,") stay inside their value.
func normalizeDN(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	var b strings.Builder
	b.Grow(len(s))
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && (s[i] != ',' && s[i] != '+' || i > 0 && s[i-1] == '\\') {
			continue
		}
		rdn := strings.TrimSpace(s[start:i])
		if k, v, ok := strings.Cut(rdn, "="); ok {
			rdn = strings.ToUpper(strings.TrimSpace(k)) + "=" + strings.TrimSpace(v)
		}
		b.WriteString(rdn)
		if i < len(s) {
			b.WriteByte(s[i])
		}
		start = i + 1
	}
	return b.String()
}

// normalizeSAN lower-cases what looks like a DNS name (DNS is
// case-insensitive); e-mail addresses, URIs and IPs are kept as written.
func normalizeSAN(s string) string {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "@:/") {
		return s
	}
	return strings.ToLower(strings.TrimSuffix(s, "."))
}
