package certs

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/passerelle/passerelle/internal/testpki"
)

// TestAddCAFile: the pool verifies what the file's roots issued, and each
// bad file is refused with the setting's name and the file's.
func TestAddCAFile(t *testing.T) {
	dir := t.TempDir()
	rootA := testpki.NewRoot(t, testpki.CAOptions{})
	rootB := testpki.NewRoot(t, testpki.CAOptions{})
	both := filepath.Join(dir, "both.pem")
	if err := os.WriteFile(both, append(rootA.PEM(), rootB.PEM()...), 0o644); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.pem")
	if err := os.WriteFile(broken, append(rootA.PEM(), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")

	pool, err := AddCAFile(nil, "--ca", both)
	if err != nil {
		t.Fatal(err)
	}
	for _, root := range []*testpki.CA{rootA, rootB} {
		leaf := root.Leaf(t, testpki.LeafOptions{})
		if _, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
			t.Errorf("a leaf of a root in the file does not verify: %v", err)
		}
	}
	// A pool given is added to, not replaced.
	pool, err = AddCAFile(rootA.Pool(), "--ca", both)
	if err != nil || !pool.Equal(func() *x509.CertPool { p := rootA.Pool(); p.AddCert(rootA.Cert); p.AddCert(rootB.Cert); return p }()) {
		t.Errorf("AddCAFile(pool): %v, or the pool is not the given one plus the file's", err)
	}

	for _, tc := range []struct{ name, key, file, want string }{
		{"missing", "--ca", missing, "--ca: open " + missing + ": no such file or directory"},
		{"not PEM", "tls.client_ca_file", junk, "tls.client_ca_file " + junk + ": no PEM certificate found"},
		{"a block that does not parse", "acme.ca_root", broken, "acme.ca_root " + broken + ": parse certificate 2: x509: malformed certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := AddCAFile(nil, tc.key, tc.file)
			if err == nil || err.Error() != tc.want || pool != nil {
				t.Fatalf("AddCAFile: pool %v, error %v; want %q", pool, err, tc.want)
			}
		})
	}
}
