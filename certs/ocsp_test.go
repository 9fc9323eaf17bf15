package certs

import (
	"context"
	"crypto"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"golang.org/x/crypto/ocsp"
)

// ocspResponder answers every request about a certificate of issuer with
// status, signed by the issuer itself (RFC 6960 section 4.2.2.2).
func ocspResponder(t *testing.T, issuer *testpki.CA, status int, hits *atomic.Int32) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		now := time.Now()
		resp, err := ocsp.CreateResponse(issuer.Cert, issuer.Cert, ocsp.Response{
			Status: status, SerialNumber: req.SerialNumber, IssuerHash: crypto.SHA1,
			ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour), RevokedAt: now.Add(-time.Minute),
		}, issuer.Key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = w.Write(resp)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestFilesSourceStaplesOCSP(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		withIssuer bool
		wantStaple bool
	}{
		{"good", ocsp.Good, true, true},
		{"revoked is not stapled", ocsp.Revoked, true, false},
		{"no issuer in the file", ocsp.Good, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := testpki.NewRoot(t, testpki.CAOptions{})
			inter := root.Intermediate(t, testpki.CAOptions{})
			var hits atomic.Int32
			url := ocspResponder(t, inter, tt.status, &hits)
			leaf := inter.Leaf(t, testpki.LeafOptions{OCSPServer: []string{url}})
			if !tt.withIssuer {
				leaf.Chain = nil
			}
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "s.crt"), filepath.Join(dir, "s.key")
			writePair(t, leaf, certFile, keyFile)
			log, logs := testLogger(t)
			m := newTestManager(t, ManagerConfig{DataDir: t.TempDir(), Logger: log})
			src, err := m.Source(context.Background(), TLSSpec{Mode: ModeFiles, CertFile: certFile, KeyFile: keyFile})
			if err != nil {
				t.Fatal(err)
			}
			addr := echoServer(t, src.GetCertificate, nil)
			staple := func() []byte {
				c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				return c.ConnectionState().OCSPResponse
			}
			if !tt.wantStaple {
				if tt.withIssuer {
					waitFor(t, "the responder asked", 5*time.Second, func() bool { return hits.Load() > 0 })
					waitFor(t, "the refusal logged", 5*time.Second, func() bool {
						return contains(logs.String(), `level=ERROR msg="the certificate in tls.cert_file is revoked; not stapling"`)
					})
				}
				if s := staple(); len(s) != 0 {
					t.Errorf("stapled %d bytes, want none", len(s))
				}
				return
			}
			waitFor(t, "an OCSP staple", 5*time.Second, func() bool { return len(staple()) > 0 })
			resp, err := ocsp.ParseResponseForCert(staple(), leaf.Cert, inter.Cert)
			if err != nil || resp.Status != ocsp.Good {
				t.Fatalf("staple: %v, status %v", err, resp)
			}
		})
	}
}
