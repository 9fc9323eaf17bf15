package allow

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/passerelle/passerelle/certs"
)

// List is a mutual-TLS allow-list. The struct tags let a caller fill it from
// configuration directly (viper's UnmarshalKey, YAML or JSON), under the keys
// common_names, dns_names, uris and spki_pins.
type List struct {
	// CommonNames are patterns matched against the subject common name.
	CommonNames []string `mapstructure:"common_names" yaml:"common_names" json:"common_names,omitempty"`
	// DNSNames are patterns matched against the DNS subject alternative
	// names, case-insensitively.
	DNSNames []string `mapstructure:"dns_names" yaml:"dns_names" json:"dns_names,omitempty"`
	// URIs are patterns matched against the URI subject alternative names,
	// for instance "spiffe://example.org/ns/*/sa/web".
	URIs []string `mapstructure:"uris" yaml:"uris" json:"uris,omitempty"`
	// SPKIPins are base64 (standard alphabet, padded) SHA-256 digests of the
	// certificate's DER SubjectPublicKeyInfo, as printed by
	// "passerelle cert inspect" and by
	//   openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64
	SPKIPins []string `mapstructure:"spki_pins" yaml:"spki_pins" json:"spki_pins,omitempty"`
}

// Empty reports whether the list has no entry at all, in which case it
// allows every certificate.
func (l List) Empty() bool {
	return len(l.CommonNames) == 0 && len(l.DNSNames) == 0 && len(l.URIs) == 0 && len(l.SPKIPins) == 0
}

// Validate reports the first malformed entry: an empty pattern, a pattern
// with a wildcard somewhere it can never match, or a pin that is not the
// base64 of 32 bytes. Call it when loading configuration so that a typo is
// reported at start-up instead of silently refusing every client.
func (l List) Validate() error {
	var errs []error
	for i, p := range l.CommonNames {
		if err := validatePattern(p); err != nil {
			errs = append(errs, fmt.Errorf("common_names[%d]: %w", i, err))
		}
	}
	for i, p := range l.DNSNames {
		if err := validatePattern(p); err != nil {
			errs = append(errs, fmt.Errorf("dns_names[%d]: %w", i, err))
		}
	}
	for i, p := range l.URIs {
		if err := validatePattern(p); err != nil {
			errs = append(errs, fmt.Errorf("uris[%d]: %w", i, err))
		}
	}
	for i, p := range l.SPKIPins {
		if err := validatePin(p); err != nil {
			errs = append(errs, fmt.Errorf("spki_pins[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

func validatePattern(p string) error {
	if strings.TrimSpace(p) == "" {
		return errors.New("empty pattern")
	}
	if strings.Contains(p, "***") {
		return fmt.Errorf("pattern %q: at most two '*' in a row", p)
	}
	return nil
}

func validatePin(p string) error {
	raw, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return fmt.Errorf("SPKI pin %q is not standard base64: %w", p, err)
	}
	if len(raw) != sha256.Size {
		return fmt.Errorf("SPKI pin %q decodes to %d bytes, want %d (a SHA-256 digest)", p, len(raw), sha256.Size)
	}
	return nil
}

// Check reports whether cert (the client's leaf certificate) is allowed: nil
// when the list is empty or any entry matches, a *DeniedError otherwise.
// Check looks at identities only; whether the certificate chains to a
// trusted root is the TLS layer's job (see Authorize).
func (l List) Check(cert *x509.Certificate) error {
	if l.Empty() {
		return nil
	}
	if cert == nil {
		return &DeniedError{Reason: "no client certificate presented"}
	}
	if l.matchNames(cert) || l.matchPin(cert) {
		return nil
	}
	return l.denied(cert)
}

// matchNames reports whether a common name, DNS name or URI entry matches.
func (l List) matchNames(cert *x509.Certificate) bool {
	for _, p := range l.CommonNames {
		if cert.Subject.CommonName != "" && Match(p, cert.Subject.CommonName, '.', false) {
			return true
		}
	}
	for _, p := range l.DNSNames {
		for _, n := range cert.DNSNames {
			if Match(p, n, '.', true) {
				return true
			}
		}
	}
	if len(l.URIs) == 0 || len(cert.URIs) == 0 {
		return false
	}
	uris := make([]string, len(cert.URIs))
	for i, u := range cert.URIs {
		uris[i] = u.String()
	}
	for _, p := range l.URIs {
		for _, u := range uris {
			if Match(p, u, '/', false) {
				return true
			}
		}
	}
	return false
}

func (l List) matchPin(cert *x509.Certificate) bool {
	if len(l.SPKIPins) == 0 {
		return false
	}
	pin := certs.SPKIPin(cert)
	for _, p := range l.SPKIPins {
		if p == pin {
			return true
		}
	}
	return false
}

// denied builds the refusal, naming only the kinds the list actually uses so
// that the message says what was compared ("client certificate CN \"bob\"
// not in allow-list").
func (l List) denied(cert *x509.Certificate) *DeniedError {
	var parts []string
	if len(l.CommonNames) > 0 {
		parts = append(parts, "CN "+strconv.Quote(cert.Subject.CommonName))
	}
	if len(l.DNSNames) > 0 {
		parts = append(parts, "DNS names "+quoteList(cert.DNSNames))
	}
	if len(l.URIs) > 0 {
		uris := make([]string, len(cert.URIs))
		for i, u := range cert.URIs {
			uris[i] = u.String()
		}
		parts = append(parts, "URIs "+quoteList(uris))
	}
	if len(l.SPKIPins) > 0 {
		parts = append(parts, "SPKI pin "+strconv.Quote(certs.SPKIPin(cert)))
	}
	return &DeniedError{
		Subject: cert.Subject.String(),
		Reason:  "client certificate " + joinAnd(parts) + " not in allow-list",
	}
}

func quoteList(ss []string) string {
	if len(ss) == 0 {
		return "(none)"
	}
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, " ") + "]"
}

func joinAnd(parts []string) string {
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	default:
		return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
	}
}

// DeniedError is the refusal of a client certificate by an allow-list.
type DeniedError struct {
	// Subject is the refused certificate's subject, empty when there was no
	// certificate.
	Subject string
	// Reason says what was compared, for the log and the peer.
	Reason string
}

func (e *DeniedError) Error() string { return e.Reason }
