package allow

import (
	"net/url"
	"strconv"
	"testing"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/internal/testpki"
)

// BenchmarkCheck measures one allow-list decision, as made once per
// handshake: a list of 100 entries of each kind, the client matching only
// the last SPKI pin (the worst case: every pattern is tried first).
func BenchmarkCheck(b *testing.B) {
	root := testpki.NewRoot(b, testpki.CAOptions{})
	u, _ := url.Parse("spiffe://example.org/ns/prod/sa/web")
	leaf := root.Leaf(b, testpki.LeafOptions{Client: true, CommonName: "web",
		DNSNames: []string{"web.prod.example.org", "web.example.org"}, URIs: []*url.URL{u}}).Cert
	var l List
	for i := range 100 {
		n := strconv.Itoa(i)
		l.CommonNames = append(l.CommonNames, "svc-"+n+"-*")
		l.DNSNames = append(l.DNSNames, "*.svc"+n+".example.org")
		l.URIs = append(l.URIs, "spiffe://example.org/ns/dev"+n+"/**")
		l.SPKIPins = append(l.SPKIPins, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuF"+strconv.Itoa(10+i%90)+"=")
	}
	l.SPKIPins[99] = certs.SPKIPin(leaf)
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Check(leaf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMatch measures one wildcard pattern against one name.
func BenchmarkMatch(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if !Match("spiffe://example.org/ns/*/sa/**", "spiffe://example.org/ns/prod/sa/web/v2", '/', false) {
			b.Fatal("no match")
		}
	}
}
