package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
)

func TestLoadOrCreateCACreatesOnceThenReloads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca, created, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatal("first call: created = false, want true")
	}
	c := ca.Certificate()
	if !c.IsCA || !c.MaxPathLenZero || c.MaxPathLen != 0 {
		t.Errorf("CA constraints: IsCA=%v MaxPathLen=%d MaxPathLenZero=%v", c.IsCA, c.MaxPathLen, c.MaxPathLenZero)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", c.PublicKey)
	}
	if c.SerialNumber.BitLen() < 100 {
		t.Errorf("serial %s has only %d bits", c.SerialNumber, c.SerialNumber.BitLen())
	}
	if got := c.NotAfter.Sub(c.NotBefore); got < CALifetime || got > CALifetime+2*time.Minute {
		t.Errorf("CA lifetime = %s, want about %s", got, CALifetime)
	}
	wantSKID := skidOf(t, c)
	if string(c.SubjectKeyId) != string(wantSKID) {
		t.Errorf("subject key id not derived from the public key")
	}
	if ca.CertFile() != filepath.Join(dir, "ca.pem") || ca.KeyFile() != filepath.Join(dir, "ca-key.pem") {
		t.Errorf("files = %s, %s", ca.CertFile(), ca.KeyFile())
	}
	assertMode(t, ca.KeyFile(), 0o600)
	assertMode(t, ca.CertFile(), 0o644)
	assertMode(t, dir, 0o700|os.ModeDir)

	again, created, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Error("second call: created = true, want false")
	}
	if !again.Certificate().Equal(c) {
		t.Error("second call loaded a different CA")
	}
	// The reloaded CA still signs leaves that chain to the original root.
	is, err := again.Issue(IssueRequest{Names: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := is.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "localhost"}); err != nil {
		t.Errorf("leaf from reloaded CA does not verify: %v", err)
	}
}

func skidOf(t *testing.T, c *x509.Certificate) []byte {
	t.Helper()
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil {
		t.Fatal(err)
	}
	s := sha1.Sum(spki.PublicKey.Bytes)
	return s[:]
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != want {
		t.Errorf("%s mode = %v, want %v", path, fi.Mode(), want)
	}
}

func TestLoadCAErrors(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good")
	if _, err := CreateCA(good); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other")
	if _, err := CreateCA(other); err != nil {
		t.Fatal(err)
	}
	read := func(dir, name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name  string
		files map[string][]byte // nil value: file absent
		want  string            // message with DIR standing for the folder
	}{
		{"empty folder", map[string][]byte{}, "no local CA yet: run passerelle serve or passerelle ca create (looked in DIR)"},
		{"key only", map[string][]byte{"ca-key.pem": read(good, "ca-key.pem")}, "local CA incomplete: DIR/ca-key.pem exists but DIR/ca.pem is missing"},
		{"cert only", map[string][]byte{"ca.pem": read(good, "ca.pem")}, "local CA incomplete: DIR/ca.pem exists but its key DIR/ca-key.pem is missing"},
		{"corrupt cert", map[string][]byte{"ca.pem": []byte("garbage"), "ca-key.pem": read(good, "ca-key.pem")}, "local CA certificate DIR/ca.pem: no PEM certificate found"},
		{"corrupt key", map[string][]byte{"ca.pem": read(good, "ca.pem"), "ca-key.pem": []byte("garbage")}, "local CA key DIR/ca-key.pem: no PEM private key found"},
		{"mismatched key", map[string][]byte{"ca.pem": read(good, "ca.pem"), "ca-key.pem": read(other, "ca-key.pem")}, "local CA key DIR/ca-key.pem does not match certificate DIR/ca.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
					t.Fatal(err)
				}
				// Damaged in the past: a key written seconds ago means
				// a creation in progress, which LoadOrCreateCA waits for.
				old := time.Now().Add(-time.Hour)
				if err := os.Chtimes(filepath.Join(dir, name), old, old); err != nil {
					t.Fatal(err)
				}
			}
			_, err := LoadCA(dir)
			want := strings.ReplaceAll(tt.want, "DIR", dir)
			if err == nil || err.Error() != want {
				t.Fatalf("LoadCA error = %v, want %q", err, want)
			}
			if tt.name == "empty folder" && !errors.Is(err, ErrNoCA) {
				t.Error("error does not wrap ErrNoCA")
			}
			// LoadOrCreateCA never replaces a damaged CA.
			if tt.name != "empty folder" {
				if _, _, err := LoadOrCreateCA(dir); err == nil || err.Error() != want {
					t.Errorf("LoadOrCreateCA error = %v, want %q", err, want)
				}
			}
		})
	}
}

func TestCreateCARefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	if _, err := CreateCA(dir); err != nil {
		t.Fatal(err)
	}
	_, err := CreateCA(dir)
	want := "local CA already exists: " + filepath.Join(dir, "ca.pem")
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
}

func TestLoadCAOpensslCompatible(t *testing.T) {
	testutil.Tool(t, "openssl")
	dir := t.TempDir()
	ca, err := CreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := runCmd(t, "openssl", "x509", "-in", ca.CertFile(), "-noout", "-text")
	for _, want := range []string{"CA:TRUE, pathlen:0", "Certificate Sign, CRL Sign", "Subject Key Identifier"} {
		if !strings.Contains(out, want) {
			t.Errorf("openssl x509 -text lacks %q:\n%s", want, out)
		}
	}
	runCmd(t, "openssl", "pkey", "-in", ca.KeyFile(), "-noout")
}

// Processes starting together on a fresh data folder end up with one CA.
func TestLoadOrCreateCAConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	const n = 8
	type result struct {
		ca      *CA
		created bool
		err     error
	}
	results := make(chan result, n)
	for i := 0; i < n; i++ {
		go func() {
			ca, created, err := LoadOrCreateCA(dir)
			results <- result{ca, created, err}
		}()
	}
	var first *CA
	createdCount := 0
	for i := 0; i < n; i++ {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.created {
			createdCount++
		}
		if first == nil {
			first = r.ca
		} else if !r.ca.Certificate().Equal(first.Certificate()) {
			t.Fatal("two different CAs came out of concurrent creation")
		}
	}
	if createdCount != 1 {
		t.Errorf("%d callers report creating the CA, want 1", createdCount)
	}
	onDisk, err := LoadCA(dir)
	if err != nil || !onDisk.Certificate().Equal(first.Certificate()) {
		t.Fatalf("CA on disk differs from the one handed out: %v", err)
	}
}

// TestCANamesTellDataFoldersApart: the local CAs of two data folders of one
// user differ in their subject, by the folder's id.
func TestCANamesTellDataFoldersApart(t *testing.T) {
	var names []string
	for _, dataDir := range []string{t.TempDir(), t.TempDir()} {
		ca, err := CreateCA(CADir(dataDir))
		if err != nil {
			t.Fatal(err)
		}
		want := "passerelle local CA " + userAndHost() + " " + dataDirID(dataDir)
		if got := ca.Certificate().Subject.CommonName; got != want {
			t.Fatalf("common name %q, want %q", got, want)
		}
		names = append(names, ca.Certificate().Subject.String())
	}
	if names[0] == names[1] {
		t.Fatalf("two data folders' CAs share the subject %q", names[0])
	}
	if id := dataDirID("/srv/one"); len(id) != 8 || TrustName("/srv/one") != "passerelle-"+id+"-" {
		t.Fatalf("DataDirID %q, TrustName %q", id, TrustName("/srv/one"))
	}
}
