package certs

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newTestCA(t testing.TB) *CA {
	t.Helper()
	ca, err := CreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestIssue(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		name       string
		req        IssueRequest
		wantCN     string
		wantDNS    []string
		wantIPs    []string
		wantEmails []string
		wantURIs   []string
		wantEKU    []x509.ExtKeyUsage
		wantKey    string
		lifetime   time.Duration
		verifyName string // DNS name or IP to verify as a server; "" for client
	}{
		{
			name:       "default server",
			req:        IssueRequest{Names: []string{"localhost", "127.0.0.1", "::1"}},
			wantCN:     "localhost",
			wantDNS:    []string{"localhost"},
			wantIPs:    []string{"127.0.0.1", "::1"},
			wantEKU:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			wantKey:    "ecdsa",
			lifetime:   DefaultLeafLifetime,
			verifyName: "127.0.0.1",
		},
		{
			name:       "wildcard, upper case and trailing dot normalised",
			req:        IssueRequest{Names: []string{"*.Example.TEST.", "example.test"}, Lifetime: 24 * time.Hour, KeyType: KeyEd25519},
			wantCN:     "*.example.test",
			wantDNS:    []string{"*.example.test", "example.test"},
			wantEKU:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			wantKey:    "ed25519",
			lifetime:   24 * time.Hour,
			verifyName: "chat.example.test",
		},
		{
			name:       "client with e-mail and URI",
			req:        IssueRequest{Names: []string{"alice@example.test", "spiffe://example.test/alice"}, Client: true, CommonName: "alice", KeyType: KeyRSA2048},
			wantCN:     "alice",
			wantEmails: []string{"alice@example.test"},
			wantURIs:   []string{"spiffe://example.test/alice"},
			wantEKU:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageEmailProtection},
			wantKey:    "rsa",
			lifetime:   DefaultLeafLifetime,
		},
		{
			name:     "client with only a common name",
			req:      IssueRequest{Client: true, CommonName: "bob", Lifetime: MaxLeafLifetime},
			wantCN:   "bob",
			wantEKU:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			wantKey:  "ecdsa",
			lifetime: MaxLeafLifetime,
		},
		{
			name:       "duplicates dropped",
			req:        IssueRequest{Names: []string{"a.test", "A.test", "10.0.0.1", "10.0.0.1"}},
			wantCN:     "a.test",
			wantDNS:    []string{"a.test"},
			wantIPs:    []string{"10.0.0.1"},
			wantEKU:    []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			wantKey:    "ecdsa",
			lifetime:   DefaultLeafLifetime,
			verifyName: "a.test",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			is, err := ca.Issue(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			c := is.Cert
			if c.Subject.CommonName != tt.wantCN {
				t.Errorf("CN = %q, want %q", c.Subject.CommonName, tt.wantCN)
			}
			assertStrings(t, "DNS", c.DNSNames, tt.wantDNS)
			var ips []string
			for _, ip := range c.IPAddresses {
				ips = append(ips, ip.String())
			}
			assertStrings(t, "IP", ips, tt.wantIPs)
			assertStrings(t, "email", c.EmailAddresses, tt.wantEmails)
			var uris []string
			for _, u := range c.URIs {
				uris = append(uris, u.String())
			}
			assertStrings(t, "URI", uris, tt.wantURIs)
			if len(c.ExtKeyUsage) != len(tt.wantEKU) {
				t.Errorf("EKU = %v, want %v", c.ExtKeyUsage, tt.wantEKU)
			} else {
				for i := range c.ExtKeyUsage {
					if c.ExtKeyUsage[i] != tt.wantEKU[i] {
						t.Errorf("EKU = %v, want %v", c.ExtKeyUsage, tt.wantEKU)
					}
				}
			}
			switch is.Key.Public().(type) {
			case *ecdsa.PublicKey:
				assertEq(t, "key", "ecdsa", tt.wantKey)
			case *rsa.PublicKey:
				assertEq(t, "key", "rsa", tt.wantKey)
				if c.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
					t.Error("RSA leaf lacks keyEncipherment")
				}
			case ed25519.PublicKey:
				assertEq(t, "key", "ed25519", tt.wantKey)
			}
			if c.IsCA {
				t.Error("leaf is a CA")
			}
			if c.SerialNumber.BitLen() < 100 {
				t.Errorf("serial has %d bits", c.SerialNumber.BitLen())
			}
			if got := c.NotAfter.Sub(before); got < tt.lifetime-time.Second || got > tt.lifetime+time.Minute {
				t.Errorf("lifetime from now = %s, want %s", got, tt.lifetime)
			}
			if c.NotBefore.After(before) {
				t.Error("NotBefore is not backdated")
			}
			if string(c.AuthorityKeyId) != string(ca.Certificate().SubjectKeyId) || len(c.SubjectKeyId) == 0 {
				t.Error("key identifiers missing")
			}
			if len(is.Chain) != 0 {
				t.Errorf("chain has %d certificates, want none (the CA is the root)", len(is.Chain))
			}
			opts := x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: tt.wantEKU}
			if tt.verifyName != "" {
				opts.DNSName = tt.verifyName
			}
			if _, err := c.Verify(opts); err != nil {
				t.Errorf("verify: %v", err)
			}
			// PEM and tls.Certificate round trip.
			keyPEM, err := is.KeyPEM()
			if err != nil {
				t.Fatal(err)
			}
			pair, err := tls.X509KeyPair(is.CertPEM(), keyPEM)
			if err != nil {
				t.Fatalf("X509KeyPair: %v", err)
			}
			if !pair.Leaf.Equal(c) {
				t.Error("PEM round trip changed the certificate")
			}
			if tc := is.TLSCertificate(); tc.Leaf != c || tc.PrivateKey == nil || len(tc.Certificate) != 1 {
				t.Error("TLSCertificate does not carry the leaf and key")
			}
		})
	}
}

func assertStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func assertEq(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func TestIssueBadRequests(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		name string
		req  IssueRequest
		want string
	}{
		{"no name", IssueRequest{}, "a server certificate needs at least one name (DNS name or IP address)"},
		{"client without any name", IssueRequest{Client: true}, "a client certificate needs a name or a common name"},
		{"space in name", IssueRequest{Names: []string{"a b.test"}}, `invalid name "a b.test": character ' ' not allowed in a DNS name`},
		{"wildcard in the middle", IssueRequest{Names: []string{"a.*.test"}}, `invalid name "a.*.test": a wildcard is only allowed as the whole leftmost label (*.example.com)`},
		{"partial wildcard", IssueRequest{Names: []string{"w*.example.test"}}, `invalid name "w*.example.test": a wildcard is only allowed as the whole leftmost label (*.example.com)`},
		{"wildcard on a TLD", IssueRequest{Names: []string{"*.com"}}, `invalid name "*.com": a wildcard needs at least two labels after it (*.example.com)`},
		{"empty label", IssueRequest{Names: []string{"a..test"}}, `invalid name "a..test": empty label in DNS name`},
		{"dotted quad out of range", IssueRequest{Names: []string{"999.1.1.1"}}, `invalid name "999.1.1.1": not a valid IP address, nor a valid DNS name (the last label of a DNS name cannot be all digits)`},
		{"three numbers", IssueRequest{Names: []string{"10.1.2"}}, `invalid name "10.1.2": not a valid IP address, nor a valid DNS name (the last label of a DNS name cannot be all digits)`},
		{"one number", IssueRequest{Names: []string{"2130706433"}}, `invalid name "2130706433": not a valid IP address, nor a valid DNS name (the last label of a DNS name cannot be all digits)`},
		{"empty name", IssueRequest{Names: []string{""}}, `invalid name "": empty name`},
		{"hyphen", IssueRequest{Names: []string{"-a.test"}}, `invalid name "-a.test": DNS label "-a" starts or ends with a hyphen`},
		{"bad e-mail", IssueRequest{Names: []string{"a@@b"}}, `invalid name "a@@b": not a valid e-mail address (want local@domain)`},
		{"bad URI", IssueRequest{Names: []string{"://x"}}, `invalid name "://x": not a valid URI: missing protocol scheme`},
		{"IP with zone", IssueRequest{Names: []string{"fe80::1%eth0"}}, `invalid name "fe80::1%eth0": an IP address in a certificate cannot carry a zone`},
		{"unicode", IssueRequest{Names: []string{"café.test"}}, `invalid name "café.test": non-ASCII DNS name: give its punycode form (xn--...)`},
		{"too long", IssueRequest{Names: []string{"a.test"}, Lifetime: MaxLeafLifetime + time.Hour}, "certificate lifetime 19801h0m0s is over the 825-day maximum that clients accept"},
		{"negative", IssueRequest{Names: []string{"a.test"}, Lifetime: -time.Hour}, "certificate lifetime -1h0m0s is negative"},
		{"key type", IssueRequest{Names: []string{"a.test"}, KeyType: "dsa"}, `unknown key type "dsa": want one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096, ed25519`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ca.Issue(tt.req)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestIssueForPublicKey(t *testing.T) {
	ca := newTestCA(t)
	k, err := GenerateKey(KeyECDSAP384)
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.Issue(IssueRequest{Names: []string{"csr.test"}, PublicKey: k.Public()})
	if err != nil {
		t.Fatal(err)
	}
	if !publicKeysEqual(is.Cert.PublicKey, k.Public()) {
		t.Error("certificate does not certify the given key")
	}
	if is.Key != nil {
		t.Error("Issued.Key set for an outside public key")
	}
	if _, err := is.KeyPEM(); err == nil || err.Error() != "no private key: the certificate was issued for a given public key" {
		t.Errorf("KeyPEM error = %v", err)
	}
}

func TestIssueNeverOutlivesCA(t *testing.T) {
	ca := newTestCA(t)
	ca.cert.NotAfter = time.Now().Add(48 * time.Hour) // only the template's end date matters here
	is, err := ca.Issue(IssueRequest{Names: []string{"a.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if is.Cert.NotAfter.After(ca.cert.NotAfter) {
		t.Errorf("leaf ends %s, after the CA (%s)", is.Cert.NotAfter, ca.cert.NotAfter)
	}
}

func TestIssuedFilesWithOpenssl(t *testing.T) {
	ca := newTestCA(t)
	is, err := ca.Issue(IssueRequest{Names: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "a.crt"), filepath.Join(dir, "a.key")
	keyPEM, _ := is.KeyPEM()
	if err := WriteFileAtomic(crt, is.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	out := runCmd(t, "openssl", "verify", "-CAfile", ca.CertFile(), "-purpose", "sslserver", crt)
	if !strings.Contains(out, ": OK") {
		t.Errorf("openssl verify: %s", out)
	}
	runCmd(t, "openssl", "pkey", "-in", key, "-noout")
	assertMode(t, key, 0o600)
}
