package allow

import (
	"crypto/x509"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/internal/testpki"
)

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		sep           byte
		fold          bool
		want          bool
	}{
		{"bob", "bob", '.', false, true},
		{"bob", "Bob", '.', false, false},
		{"bob", "bobby", '.', false, false},
		{"*.example.com", "a.example.com", '.', true, true},
		{"*.example.com", "A.Example.COM", '.', true, true},
		{"*.example.com", "a.b.example.com", '.', true, false},
		{"*.example.com", ".example.com", '.', true, false},
		{"*.example.com", "example.com", '.', true, false},
		{"**.example.com", "a.b.example.com", '.', true, true},
		{"web-*.example.com", "web-1.example.com", '.', true, true},
		{"web-*.example.com", "db-1.example.com", '.', true, false},
		{"spiffe://example.org/*", "spiffe://example.org/web", '/', false, true},
		{"spiffe://example.org/*", "spiffe://example.org/ns/web", '/', false, false},
		{"spiffe://example.org/**", "spiffe://example.org/ns/prod/sa/web", '/', false, true},
		{"spiffe://example.org/ns/*/sa/web", "spiffe://example.org/ns/prod/sa/web", '/', false, true},
		{"spiffe://example.org/ns/*/sa/web", "spiffe://example.org/ns/prod/sa/db", '/', false, false},
		{"spiffe://example.org/*", "spiffe://example.net/web", '/', false, false},
		{"*", "", '.', false, false},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.name, tt.sep, tt.fold); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestCheck(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	bob := root.Leaf(t, testpki.LeafOptions{
		Client:     true,
		CommonName: "bob",
		DNSNames:   []string{"bob.clients.example.com"},
		URIs:       []*url.URL{mustURL(t, "spiffe://example.org/ns/prod/sa/bob")},
	}).Cert
	other := root.Leaf(t, testpki.LeafOptions{Client: true, CommonName: "eve"}).Cert
	bobPin := certs.SPKIPin(bob)

	tests := []struct {
		name    string
		list    List
		cert    *x509.Certificate
		wantErr string
	}{
		{"empty list allows all", List{}, bob, ""},
		{"empty list allows no certificate", List{}, nil, ""},
		{"CN allowed", List{CommonNames: []string{"alice", "bob"}}, bob, ""},
		{"CN refused", List{CommonNames: []string{"alice"}}, bob,
			`client certificate CN "bob" not in allow-list`},
		{"DNS wildcard allowed", List{DNSNames: []string{"*.clients.example.com"}}, bob, ""},
		{"DNS refused", List{DNSNames: []string{"*.servers.example.com"}}, bob,
			`client certificate DNS names ["bob.clients.example.com"] not in allow-list`},
		{"DNS refused when the certificate has none", List{DNSNames: []string{"*.example.com"}}, other,
			`client certificate DNS names (none) not in allow-list`},
		{"URI allowed", List{URIs: []string{"spiffe://example.org/ns/*/sa/bob"}}, bob, ""},
		{"URI refused", List{URIs: []string{"spiffe://example.org/ns/dev/**"}}, bob,
			`client certificate URIs ["spiffe://example.org/ns/prod/sa/bob"] not in allow-list`},
		{"pin allowed", List{SPKIPins: []string{bobPin}}, bob, ""},
		{"pin refused", List{SPKIPins: []string{bobPin}}, other,
			`client certificate SPKI pin "` + certs.SPKIPin(other) + `" not in allow-list`},
		{"any kind matching is enough", List{CommonNames: []string{"alice"}, SPKIPins: []string{bobPin}}, bob, ""},
		{"every kind named in refusal", List{CommonNames: []string{"alice"}, DNSNames: []string{"x"}, SPKIPins: []string{bobPin}}, other,
			`client certificate CN "eve", DNS names (none) and SPKI pin "` + certs.SPKIPin(other) + `" not in allow-list`},
		{"no certificate", List{CommonNames: []string{"bob"}}, nil, "no client certificate presented"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.list.Check(tt.cert)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Check: %v, want allowed", err)
				}
				return
			}
			var de *DeniedError
			if !errors.As(err, &de) {
				t.Fatalf("Check: %v (%T), want *DeniedError", err, err)
			}
			if err.Error() != tt.wantErr {
				t.Fatalf("Check:\n got  %s\n want %s", err, tt.wantErr)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		list    List
		wantErr string
	}{
		{"empty", List{}, ""},
		{"good", List{CommonNames: []string{"bob"}, DNSNames: []string{"*.example.com"}, URIs: []string{"spiffe://x/*"},
			SPKIPins: []string{"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}}, ""},
		{"empty pattern", List{DNSNames: []string{"a", " "}}, "dns_names[1]: empty pattern"},
		{"triple star", List{URIs: []string{"spiffe://x/***"}}, `uris[0]: pattern "spiffe://x/***": at most two '*' in a row`},
		{"pin not base64", List{SPKIPins: []string{"not base64!"}},
			`spki_pins[0]: SPKI pin "not base64!" is not standard base64: illegal base64 data at input byte 3`},
		{"pin wrong length", List{SPKIPins: []string{"AAAA"}},
			`spki_pins[0]: SPKI pin "AAAA" decodes to 3 bytes, want 32 (a SHA-256 digest)`},
		{"several", List{CommonNames: []string{""}, SPKIPins: []string{"AAAA"}},
			"common_names[0]: empty pattern\n" + `spki_pins[0]: SPKI pin "AAAA" decodes to 3 bytes, want 32 (a SHA-256 digest)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.list.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Fatalf("Validate:\n got  %q\n want %q", got, tt.wantErr)
			}
		})
	}
}

// The pin must agree with the openssl recipe given in the documentation.
func TestSPKIPinMatchesOpenSSL(t *testing.T) {
	c := testpki.NewRoot(t, testpki.CAOptions{}).Leaf(t, testpki.LeafOptions{Client: true}).Cert
	got := certs.SPKIPin(c)
	if !strings.HasSuffix(got, "=") || len(got) != 44 {
		t.Fatalf("SPKIPin = %q, want 44 base64 characters", got)
	}
	want := opensslPin(t, testpki.CertPEM(c))
	if got != want {
		t.Fatalf("SPKIPin = %q, openssl says %q", got, want)
	}
}
