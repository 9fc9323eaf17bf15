package secure

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"math/big"
	"testing"

	"github.com/passerelle/passerelle/internal/testpki"
)

// TestCheckCost: a check counts as what it costs next to a P-256 one.
func TestCheckCost(t *testing.T) {
	rsaKey := func(bits int) *rsa.PublicKey {
		// Only the modulus's length matters here, not its factors.
		n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
		return &rsa.PublicKey{N: n.Add(n, big.NewInt(1)), E: 65537}
	}
	tests := []struct {
		name string
		pub  any
		want int
	}{
		{"RSA 1024", rsaKey(1024), 1},
		{"RSA 2048", rsaKey(2048), 1},
		{"RSA 3072", rsaKey(3072), 3},
		{"RSA 4096", rsaKey(4096), 4},
		{"RSA 8192", rsaKey(8192), 16},
		{"RSA 16384", rsaKey(16384), 64},
		{"P-224", &ecdsa.PublicKey{Curve: elliptic.P224()}, 3},
		{"P-256", &ecdsa.PublicKey{Curve: elliptic.P256()}, 1},
		{"P-384", &ecdsa.PublicKey{Curve: elliptic.P384()}, 8},
		{"P-521", &ecdsa.PublicKey{Curve: elliptic.P521()}, 22},
		{"Ed25519", ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)), 1},
	}
	for _, tt := range tests {
		if got := checkCost(tt.pub); got != tt.want {
			t.Errorf("%s: %d units, want %d", tt.name, got, tt.want)
		}
	}
}

// TestSearchWork: what crypto/x509's search may cost is foreseen from the
// names and keys alone; a search that may cost more than the budget is not
// run.
func TestSearchWork(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	inter := root.Intermediate(t, testpki.CAOptions{})
	leaf := inter.Leaf(t, testpki.LeafOptions{})
	rsaKey, err := rsa.GenerateKey(rand.Reader, 4096)
	if err != nil {
		t.Fatal(err)
	}
	now := inter.Cert.NotBefore.Add(1)
	rsaInter := reissue(t, inter.Cert, &rsaKey.PublicKey, root, now, inter.Cert.NotAfter)
	loop, _ := longChain(t, maxCertificates)
	worst, _ := worstChain(t, maxCertificates)
	tests := []struct {
		name  string
		certs []*x509.Certificate
		want  int
	}{
		{"leaf alone", []*x509.Certificate{leaf.Cert}, 0},
		{"leaf and intermediate", []*x509.Certificate{leaf.Cert, inter.Cert}, 1},
		{"intermediate sent twice", []*x509.Certificate{leaf.Cert, inter.Cert, inter.Cert}, 1},
		{"leaf sent as its own issuer", []*x509.Certificate{leaf.Cert, leaf.Cert}, 0},
		{"RSA 4096 intermediate", []*x509.Certificate{leaf.Cert, rsaInter}, 4},
		{"two candidate issuers", []*x509.Certificate{leaf.Cert, rsaInter, inter.Cert}, 5},
		{"64 certificates each naming the others", loop, 100},
		{"64 certificates each verifying half the others", worst, 100},
		{"the same with RSA 4096 keys", loopChain(t, maxCertificates, rsaKey, inter.Key), 400},
	}
	for _, tt := range tests {
		if got := searchWork(tt.certs[0], tt.certs[1:]); got != tt.want {
			t.Errorf("%s: %d units, want %d", tt.name, got, tt.want)
		}
	}
}

// TestSigBudget: a check that would take the work past the budget is
// refused before it is made, and the reason names the budget.
func TestSigBudget(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	leaf := root.Leaf(t, testpki.LeafOptions{})
	b := &sigBudget{max: 2}
	for i := range 2 {
		if err := b.signedBy(leaf.Cert, root.Cert); err != nil {
			t.Fatalf("check %d: %v", i+1, err)
		}
	}
	err := b.signedBy(leaf.Cert, root.Cert)
	if err != errSignatureBudget || b.used != 2 {
		t.Fatalf("third check: %v, %d units spent", err, b.used)
	}
	if want := "no path to a trusted root found within the budget of 100 signature checks (larger keys count as several) among the certificates the peer sent"; err.Error() != want {
		t.Errorf("reason %q, want %q", err, want)
	}
}
