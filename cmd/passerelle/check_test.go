package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/certs/revocation"
	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/secure"
)

// checkServer runs a secure.Server presenting cert on 127.0.0.1 until the
// test ends, and returns its address.
func checkServer(t *testing.T, cfg secure.ServerConfig) string {
	t.Helper()
	ln := testutil.Listen(t)
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv := &secure.Server{Config: cfg, Handler: func(_ context.Context, c *secure.Conn) {
		io.WriteString(c, "Connected.")
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

func certOf(c tls.Certificate) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &c, nil }
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// TestCheckStatusesAndExitCodes runs check against one listener per status
// and reads both the JSON status and the exit code.
func TestCheckStatusesAndExitCodes(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, testpki.CAOptions{})
	caFile := root.WriteCert(t, dir, "root.pem")
	other := testpki.NewRoot(t, testpki.CAOptions{CommonName: "someone else"})
	day := 24 * time.Hour

	revoked := root.Leaf(t, testpki.LeafOptions{})
	list := revocation.NewList()
	list.Revoke(revoked.Cert.SerialNumber, time.Now().Add(-time.Minute), revocation.ReasonKeyCompromise)
	pub, err := revocation.NewCRLPublisher(revocation.CRLConfig{Issuer: root.Cert, Signer: root.Key, List: list})
	if err != nil {
		t.Fatal(err)
	}
	crlDER, err := pub.CRL()
	if err != nil {
		t.Fatal(err)
	}
	crlFile := filepath.Join(dir, "root.crl")
	os.WriteFile(crlFile, crlDER, 0o600)

	silent := testutil.Listen(t) // accepts, never speaks
	defer silent.Close()

	tests := []struct {
		name   string
		addr   func() string
		args   []string
		status secure.Status
		code   int
	}{
		{"trusted", func() string { return serveLeaf(t, root.Leaf(t, testpki.LeafOptions{})) }, nil, secure.StatusTrusted, 0},
		{"unknown", func() string { return silent.Addr().String() }, []string{"--timeout", "300ms"}, secure.StatusUnknown, 2},
		{"invalid", func() string {
			return serveLeaf(t, root.Leaf(t, testpki.LeafOptions{DNSNames: []string{"localhost"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}))
		}, nil, secure.StatusInvalid, 3},
		{"invalidChain", func() string {
			return serveLeaf(t, root.Intermediate(t, testpki.CAOptions{NotCA: true}).Leaf(t, testpki.LeafOptions{}))
		}, nil, secure.StatusInvalidChain, 4},
		{"expired", func() string {
			return serveLeaf(t, root.Leaf(t, testpki.LeafOptions{NotBefore: time.Now().Add(-2 * day), NotAfter: time.Now().Add(-day)}))
		}, nil, secure.StatusExpired, 5},
		{"notYetValid", func() string {
			return serveLeaf(t, root.Leaf(t, testpki.LeafOptions{NotBefore: time.Now().Add(day), NotAfter: time.Now().Add(2 * day)}))
		}, nil, secure.StatusNotYetValid, 6},
		{"principalMismatch", func() string { return serveLeaf(t, root.Leaf(t, testpki.LeafOptions{})) }, []string{"--servername", "chat.example.org"}, secure.StatusPrincipalMismatch, 7},
		{"revoked", func() string { return serveLeaf(t, revoked) }, []string{"--crl", crlFile}, secure.StatusRevoked, 8},
		{"untrustedSigners", func() string { return serveLeaf(t, other.Leaf(t, testpki.LeafOptions{})) }, nil, secure.StatusUntrustedSigners, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"check", tt.addr(), "--ca", caFile, "--json", "--data-dir", dir}, tt.args...)
			out, _, err := runCLI(t, args...)
			if got := exitCode(err); got != tt.code {
				t.Errorf("exit code %d (%v), want %d", got, err, tt.code)
			}
			var rep struct {
				Status string `json:"status"`
				Reason string `json:"reason"`
				Chain  []struct {
					SHA256 string `json:"sha256_fingerprint"`
				} `json:"chain"`
				TLS *struct {
					Version string `json:"version"`
				} `json:"tls"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("output is not one JSON object: %v\n%s", err, out)
			}
			if rep.Status != string(tt.status) {
				t.Errorf("status %q (%s), want %q", rep.Status, rep.Reason, tt.status)
			}
			if tt.status != secure.StatusUnknown && (len(rep.Chain) == 0 || rep.Chain[0].SHA256 == "" || rep.TLS == nil || rep.TLS.Version == "") {
				t.Errorf("report lacks the chain or TLS details:\n%s", out)
			}
		})
	}
}

// serveLeaf starts a listener presenting leaf and returns its address.
func serveLeaf(t *testing.T, leaf *testpki.Leaf) string {
	return checkServer(t, secure.ServerConfig{GetCertificate: certOf(leaf.TLS())})
}

func TestCheckTextOutput(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, testpki.CAOptions{CommonName: "check root"})
	caFile := root.WriteCert(t, dir, "root.pem")
	leaf := root.Leaf(t, testpki.LeafOptions{})
	addr := checkServer(t, secure.ServerConfig{GetCertificate: certOf(leaf.TLS()), NextProtos: []string{"xmlsocket"}})

	out, _, err := runCLI(t, "check", addr, "--ca", caFile, "--servername", "localhost", "--alpn", "xmlsocket", "--data-dir", dir)
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	info := certs.Describe(leaf.Cert, time.Now())
	for _, want := range []string{
		"status: trusted\nreason: certificate chain verified for localhost\nserver: " + addr + " (server name localhost)\n",
		"tls: TLS 1.3, TLS_",
		", ALPN xmlsocket\nocsp staple: none\nrevocation: unknown: the certificate names no OCSP responder and no CRL distribution point\nchain presented (1):\n  [0]\n    Subject:        CN=localhost,O=passerelle tests\n",
		"    Serial:         " + info.Serial + "\n",
		"    SHA-256:        " + info.SHA256Fingerprint + "\n",
		"path judged: CN=localhost,O=passerelle tests <- CN=check root,O=passerelle tests\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.HasPrefix(out, "status: trusted\n") {
		t.Errorf("the status is not the first line:\n%s", out)
	}
}

func TestCheckFailedVerdictText(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, testpki.CAOptions{})
	caFile := root.WriteCert(t, dir, "root.pem")
	addr := serveLeaf(t, root.Leaf(t, testpki.LeafOptions{}))
	out, _, err := runCLI(t, "check", addr, "--ca", caFile, "--servername", "chat.example.org", "--data-dir", dir)
	if exitCode(err) != 7 {
		t.Errorf("exit %v, want 7", err)
	}
	want := "status: principalMismatch\nreason: certificate is valid for localhost, 127.0.0.1, not chat.example.org\nserver: " + addr + " (server name chat.example.org)\ntls: TLS 1.3,"
	if !strings.HasPrefix(out, want) {
		t.Errorf("output\n%s\nwant prefix\n%s", out, want)
	}
}

// TestCheckTrustsLocalCA: without --ca, the local CA of the data folder is
// trusted (and the system roots).
func TestCheckTrustsLocalCA(t *testing.T) {
	dir := t.TempDir()
	ca, err := certs.CreateCA(certs.CADir(dir))
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ca.Issue(certs.IssueRequest{Names: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	addr := checkServer(t, secure.ServerConfig{GetCertificate: certOf(iss.TLSCertificate())})
	out, _, err := runCLI(t, "check", addr, "--data-dir", dir)
	if err != nil || !strings.HasPrefix(out, "status: trusted\n") {
		t.Errorf("check with the local CA: %v\n%s", err, out)
	}
	// Another data folder, no local CA: the same server is untrusted.
	out, _, err = runCLI(t, "check", addr, "--data-dir", t.TempDir())
	if exitCode(err) != 9 || !strings.HasPrefix(out, "status: untrustedSigners\n") {
		t.Errorf("check without the local CA: %v\n%s", err, out)
	}
}

func TestCheckMutualTLS(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, testpki.CAOptions{})
	caFile := root.WriteCert(t, dir, "root.pem")
	addr := checkServer(t, secure.ServerConfig{
		GetCertificate: certOf(root.Leaf(t, testpki.LeafOptions{}).TLS()),
		ClientAuth:     secure.ClientAuthRequire,
		ClientCAs:      root.Pool(),
	})
	certFile, keyFile := root.Leaf(t, testpki.LeafOptions{Client: true, Emails: []string{"alice@example.org"}}).WriteFiles(t, dir, "alice")
	out, _, err := runCLI(t, "check", addr, "--ca", caFile, "--cert", certFile, "--key", keyFile, "--data-dir", dir)
	if err != nil || !strings.Contains(out, "status: trusted\n") || !strings.Contains(out, "\nclient certificate: accepted\n") {
		t.Errorf("check with a client certificate: %v\n%s", err, out)
	}

	// A client certificate from another CA: the server's certificate is
	// fine, the server refuses ours.
	other := testpki.NewRoot(t, testpki.CAOptions{CommonName: "someone else"})
	certFile, keyFile = other.Leaf(t, testpki.LeafOptions{Client: true, Emails: []string{"mallory@example.org"}}).WriteFiles(t, dir, "mallory")
	out, _, err = runCLI(t, "check", addr, "--ca", caFile, "--cert", certFile, "--key", keyFile, "--data-dir", dir)
	if exitCode(err) != 10 || !strings.Contains(out, "status: trusted\n") || !strings.Contains(out, "\nclient certificate: refused: remote error: tls: bad certificate\n") {
		t.Errorf("check with a refused client certificate: exit %d\n%s", exitCode(err), out)
	}

	// A server that does not ask.
	plainAddr := serveLeaf(t, root.Leaf(t, testpki.LeafOptions{}))
	out, _, err = runCLI(t, "check", plainAddr, "--ca", caFile, "--cert", certFile, "--key", keyFile, "--data-dir", dir)
	if err != nil || !strings.Contains(out, "\nclient certificate: not requested\n") {
		t.Errorf("check against a server that asks for no certificate: %v\n%s", err, out)
	}
}

func TestCheckBadInput(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, testpki.CAOptions{})
	caFile := root.WriteCert(t, dir, "root.pem")
	notPEM := filepath.Join(dir, "notpem.txt")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	closed := testutil.ClosedAddr(t).String()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no address", []string{"check"}, "check needs the server's address as HOST:PORT (got 0 argument(s))"},
		{"no port", []string{"check", "localhost", "--ca", caFile}, `address "localhost": want HOST:PORT`},
		{"cert without key", []string{"check", "localhost:1", "--ca", caFile, "--cert", caFile}, "--cert and --key go together: give both or neither"},
		{"bad revocation", []string{"check", "localhost:1", "--revocation", "maybe"}, `--revocation: revocation mode "maybe": want off, soft or hard`},
		{"missing ca", []string{"check", "localhost:1", "--ca", filepath.Join(dir, "nope.pem")}, "--ca: open " + filepath.Join(dir, "nope.pem") + ": no such file or directory"},
		{"ca not PEM", []string{"check", "localhost:1", "--ca", notPEM}, "--ca " + notPEM + ": no PEM certificate found"},
		{"bad timeout", []string{"check", "localhost:1", "--ca", caFile, "--timeout", "0s"}, "--timeout 0s: must be positive"},
		{"connection refused", []string{"check", closed, "--ca", caFile}, "connect to " + closed + ": dial tcp " + closed + ": connect: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCLI(t, append(tt.args, "--data-dir", dir)...)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v, want %q", err, tt.want)
			}
			if exitCode(err) != 1 {
				t.Errorf("exit code %d, want 1", exitCode(err))
			}
		})
	}
	// --json still prints one object when no connection was made.
	out, _, err := runCLI(t, "check", closed, "--ca", caFile, "--json", "--data-dir", dir)
	if exitCode(err) != 1 || !strings.Contains(out, `"status": "unknown"`) || !strings.Contains(out, `"error": "dial tcp `+closed+`: connect: connection refused"`) {
		t.Errorf("json on refused connection: %v\n%s", err, out)
	}
}

// TestCheckAndInspectEscapeCertificateNames points check and cert inspect at
// a live server whose certificate carries escape sequences in its names:
// the output shows them escaped, never raw.
func TestCheckAndInspectEscapeCertificateNames(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, testpki.CAOptions{CommonName: "root \u009b2J\u202eevil"})
	caFile := root.WriteCert(t, dir, "root.pem")
	leaf := root.Leaf(t, testpki.LeafOptions{
		CommonName: "\x1b]2;owned\x07",
		DNSNames:   []string{"evil\x1b[2J.example.com"},
	})
	addr := checkServer(t, secure.ServerConfig{GetCertificate: certOf(leaf.TLS())})
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"check", []string{"check", addr, "--ca", caFile, "--servername", "localhost", "--data-dir", dir}, 7, []string{
			"reason: certificate is valid for evil\\x1b[2J.example.com, not localhost\n",
			"    Subject:        CN=\\x1b]2\\;owned\\x07,O=passerelle tests\n",
			"    Issuer:         CN=root \\u009b2J\\u202eevil,O=passerelle tests\n",
			"    Names:          DNS:evil\\x1b[2J.example.com\n",
		}},
		{"cert inspect", []string{"cert", "inspect", addr, "--data-dir", dir}, 0, []string{
			"  Subject:        CN=\\x1b]2\\;owned\\x07,O=passerelle tests\n",
			"  Names:          DNS:evil\\x1b[2J.example.com\n",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runCLI(t, tt.args...)
			if got := exitCode(err); got != tt.code {
				t.Errorf("exit code %d (%v), want %d", got, err, tt.code)
			}
			for _, want := range tt.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if strings.ContainsAny(out, "\x1b\x07\u009b\u202e") {
				t.Errorf("raw control characters reached the output:\n%q", out)
			}
		})
	}
}
