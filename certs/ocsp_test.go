package certs

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/passerelle/passerelle/certs/revocation"
	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

// TestFilesSourceStaplesOCSP serves a files-mode certificate whose leaf
// names a real OCSP responder on loopback: handshakes carry the responder's
// verified answer, good, then revoked after a reload once the responder
// revokes the next certificate.
func TestFilesSourceStaplesOCSP(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	inter := root.Intermediate(t, testpki.CAOptions{})
	list := revocation.NewList()
	responder, err := revocation.NewResponder(revocation.ResponderConfig{Issuer: inter.Cert, Signer: inter.Key, List: list})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(responder)
	t.Cleanup(web.Close)
	ocspURL := web.URL

	good := inter.Leaf(t, testpki.LeafOptions{OCSPServer: []string{ocspURL}})
	revoked := inter.Leaf(t, testpki.LeafOptions{OCSPServer: []string{ocspURL}})
	if err := list.Revoke(revoked.Cert.SerialNumber, time.Now().Add(-time.Minute), revocation.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	writePair(t, good, certFile, keyFile)

	log, logs := testutil.Logger(t, slog.LevelDebug)
	m := newTestManager(t, ManagerConfig{DataDir: t.TempDir(), Logger: log, FileDebounce: 20 * time.Millisecond})
	src, err := m.Source(context.Background(), TLSSpec{Mode: ModeFiles, CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	addr := echoServer(t, src.GetCertificate, src.NextProtos)
	stapled := func(serial string) int {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost", RootCAs: root.Pool()})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		st := c.ConnectionState()
		if got := st.PeerCertificates[0].SerialNumber.Text(16); got != serial || len(st.OCSPResponse) == 0 {
			return -1
		}
		resp, err := ocsp.ParseResponseForCert(st.OCSPResponse, st.PeerCertificates[0], inter.Cert)
		if err != nil {
			t.Fatalf("stapled response does not verify: %v", err)
		}
		return resp.Status
	}
	testutil.Eventually(t, "a good staple", 5*time.Second, func() bool { return stapled(good.Cert.SerialNumber.Text(16)) == ocsp.Good })

	writePair(t, revoked, certFile, keyFile)
	testutil.Eventually(t, "a revoked staple after the swap", 5*time.Second, func() bool {
		return stapled(revoked.Cert.SerialNumber.Text(16)) == ocsp.Revoked
	})
	if want := `level=ERROR msg="the certificate is revoked; stapling the revocation"`; !strings.Contains(logs.String(), want) {
		t.Errorf("no %q in the log", want)
	}
}
