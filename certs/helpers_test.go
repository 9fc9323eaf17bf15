package certs

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
)

// runCmd runs a command and fails the test with its output when it fails.
func runCmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// echoServer is a TLS echo server on 127.0.0.1 using getCert. It stops at
// the end of the test.
func echoServer(t testing.TB, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error), nextProtos []string) string {
	t.Helper()
	return echoOn(t, testutil.Listen(t), getCert, nextProtos)
}

func echoOn(t testing.TB, ln net.Listener, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error), nextProtos []string) string {
	t.Helper()
	tl := tls.NewListener(ln, &tls.Config{GetCertificate: getCert, NextProtos: nextProtos})
	wait := testutil.Serve(tl, func(c net.Conn) {
		defer c.Close()
		_, _ = io.Copy(c, c)
	})
	t.Cleanup(func() { _ = tl.Close(); wait() })
	return ln.Addr().String()
}

// dialLeaf connects with the given trust and name and returns the leaf the
// server presented, with the verification error if any.
func dialLeaf(t testing.TB, addr, serverName string, roots *x509.CertPool) (*x509.Certificate, error) {
	t.Helper()
	var leaf *x509.Certificate
	cfg := &tls.Config{ServerName: serverName, RootCAs: roots,
		VerifyConnection: func(cs tls.ConnectionState) error {
			leaf = cs.PeerCertificates[0]
			return nil
		}}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		if leaf == nil {
			// Verification failed before VerifyConnection: read the leaf unverified.
			cfg2 := &tls.Config{ServerName: serverName, InsecureSkipVerify: true}
			if c2, err2 := tls.Dial("tcp", addr, cfg2); err2 == nil {
				leaf = c2.ConnectionState().PeerCertificates[0]
				c2.Close()
			}
		}
		return leaf, err
	}
	defer c.Close()
	return leaf, nil
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
