package certs

import (
	"crypto"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/passerelle/passerelle/internal/testpki"
)

func TestPKCS12RoundTripAndOpenSSL(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	leaf := root.Leaf(t, testpki.LeafOptions{Client: true, CommonName: "bob"})
	tests := []struct {
		name     string
		format   P12Format
		password string
		// what "openssl pkcs12 -info" reports for the key bag
		wantAlg string
	}{
		{"legacy", P12Legacy, "s3cret", "pbeWithSHA1And3-KeyTripleDES-CBC"},
		{"legacy empty password", P12Legacy, "", "pbeWithSHA1And3-KeyTripleDES-CBC"},
		{"default is legacy", "", "s3cret", "pbeWithSHA1And3-KeyTripleDES-CBC"},
		{"modern", P12Modern, "correct horse battery staple", "PBES2, PBKDF2, AES-256-CBC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := EncodePKCS12(leaf.Key, leaf.Cert, []*x509.Certificate{root.Cert}, tt.password, tt.format)
			if err != nil {
				t.Fatal(err)
			}
			key, cert, chain, err := DecodePKCS12(der, tt.password)
			if err != nil {
				t.Fatal(err)
			}
			if !cert.Equal(leaf.Cert) || len(chain) != 1 || !chain[0].Equal(root.Cert) {
				t.Fatal("decoded certificates differ")
			}
			if !leaf.Key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(key.(crypto.Signer).Public()) {
				t.Fatal("decoded key differs")
			}

			// OpenSSL 3 reads what we produce with its default provider,
			// no -legacy needed (3DES, not RC2).
			path := filepath.Join(t.TempDir(), "bob.p12")
			if err := os.WriteFile(path, der, 0o600); err != nil {
				t.Fatal(err)
			}
			out := runCmd(t, "openssl", "pkcs12", "-in", path, "-passin", "pass:"+tt.password, "-nodes", "-info")
			if !strings.Contains(out, "Shrouded Keybag: "+tt.wantAlg) {
				t.Errorf("openssl -info lacks key bag %q:\n%s", tt.wantAlg, out)
			}
			if tt.format != P12Modern && !strings.Contains(out, "MAC: sha1, Iteration 2048") {
				t.Errorf("openssl -info: want a SHA-1 MAC of 2048 iterations:\n%s", out)
			}
			if !strings.Contains(out, "CN = bob\n") || !strings.Contains(out, "BEGIN PRIVATE KEY") {
				t.Errorf("openssl did not extract the certificate and key:\n%s", out)
			}
			if _, _, _, err := DecodePKCS12(der, tt.password+"x"); !errors.Is(err, ErrP12Password) {
				t.Errorf("wrong password: %v, want ErrP12Password", err)
			}
		})
	}
}

// AIR's packager (ADT) and Java clients read PKCS#12 through Java: the legacy
// form must load in keytool.
func TestPKCS12LegacyReadByKeytool(t *testing.T) {
	if _, err := exec.LookPath("keytool"); err != nil {
		t.Skip("keytool not installed: cannot check the Java reader")
	}
	root := testpki.NewRoot(t, testpki.CAOptions{})
	leaf := root.Leaf(t, testpki.LeafOptions{})
	der, err := EncodePKCS12(leaf.Key, leaf.Cert, []*x509.Certificate{root.Cert}, "changeit", P12Legacy)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "server.p12")
	if err := os.WriteFile(path, der, 0o600); err != nil {
		t.Fatal(err)
	}
	out := runCmd(t, "keytool", "-list", "-storetype", "PKCS12", "-keystore", path, "-storepass", "changeit")
	if !strings.Contains(out, "PrivateKeyEntry") {
		t.Fatalf("keytool lists no private key entry:\n%s", out)
	}
}

func TestPKCS12Errors(t *testing.T) {
	leaf := testpki.NewRoot(t, testpki.CAOptions{}).Leaf(t, testpki.LeafOptions{})
	tests := []struct {
		name    string
		run     func() error
		wantErr string
	}{
		{"no key", func() error { _, err := EncodePKCS12(nil, leaf.Cert, nil, "x", P12Legacy); return err },
			"PKCS#12: no private key to bundle"},
		{"no certificate", func() error { _, err := EncodePKCS12(leaf.Key, nil, nil, "x", P12Legacy); return err },
			"PKCS#12: no certificate to bundle"},
		{"bad format", func() error { _, err := EncodePKCS12(leaf.Key, leaf.Cert, nil, "x", "rc2"); return err },
			`unknown PKCS#12 format "rc2": want legacy or modern`},
		{"parse format", func() error { _, err := ParseP12Format("aes"); return err },
			`unknown PKCS#12 format "aes": want legacy or modern`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); err == nil || err.Error() != tt.wantErr {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}
