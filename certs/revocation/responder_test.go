package revocation

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"golang.org/x/crypto/ocsp"
)

func ocspRequest(t *testing.T, leaf, issuer *x509.Certificate, h crypto.Hash) []byte {
	t.Helper()
	der, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: h})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func httpDo(t *testing.T, method, u, ctype string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestResponderHTTP(t *testing.T) {
	w := newWorld(t, ServiceConfig{})
	leaf := w.leaf(t, true, false)
	mustRevoke(t, w.svc.List, leaf, time.Now().Add(-time.Hour), ReasonCessationOfOperation)
	other := testpki.NewRoot(t, testpki.CAOptions{CommonName: "someone else"})
	foreignLeaf := other.Leaf(t, testpki.LeafOptions{})

	getURL := func(der []byte) string {
		// RFC 6960 appendix A.1: url-encoding of the base64 of the DER.
		return w.ocspURL + "/" + url.PathEscape(base64.StdEncoding.EncodeToString(der))
	}
	tests := []struct {
		name       string
		method     string
		url        string
		body       []byte
		wantCode   int
		wantStatus int // OCSP cert status, or -1 for an OCSP error response
		wantBody   []byte
		cacheable  bool
	}{
		{name: "POST sha1", method: "POST", url: w.ocspURL, body: ocspRequest(t, leaf, w.ca.Cert, crypto.SHA1), wantCode: 200, wantStatus: ocsp.Revoked},
		{name: "POST sha256", method: "POST", url: w.ocspURL, body: ocspRequest(t, leaf, w.ca.Cert, crypto.SHA256), wantCode: 200, wantStatus: ocsp.Revoked},
		{name: "GET", method: "GET", url: getURL(ocspRequest(t, leaf, w.ca.Cert, crypto.SHA1)), wantCode: 200, wantStatus: ocsp.Revoked, cacheable: true},
		{name: "GET unescaped base64", method: "GET", url: w.ocspURL + "/" + base64.StdEncoding.EncodeToString(ocspRequest(t, leaf, w.ca.Cert, crypto.SHA256)), wantCode: 200, wantStatus: ocsp.Revoked, cacheable: true},
		{name: "GET no request", method: "GET", url: w.ocspURL, wantCode: 400, wantStatus: -1, wantBody: ocsp.MalformedRequestErrorResponse},
		{name: "POST garbage", method: "POST", url: w.ocspURL, body: []byte("hello"), wantCode: 400, wantStatus: -1, wantBody: ocsp.MalformedRequestErrorResponse},
		{name: "POST too large", method: "POST", url: w.ocspURL, body: make([]byte, maxOCSPRequest+1), wantCode: 400, wantStatus: -1, wantBody: ocsp.MalformedRequestErrorResponse},
		{name: "another issuer", method: "POST", url: w.ocspURL, body: ocspRequest(t, foreignLeaf.Cert, other.Cert, crypto.SHA1), wantCode: 200, wantStatus: -1, wantBody: ocsp.UnauthorizedErrorResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := httpDo(t, tt.method, tt.url, ContentTypeOCSPRequest, tt.body)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != ContentTypeOCSPResponse {
				t.Errorf("Content-Type %q", ct)
			}
			if tt.wantStatus == -1 {
				if !bytes.Equal(body, tt.wantBody) {
					t.Errorf("body %x, want %x", body, tt.wantBody)
				}
				return
			}
			r, err := ocsp.ParseResponseForCert(body, leaf, w.ca.Cert)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if r.Status != tt.wantStatus || r.RevocationReason != int(ReasonCessationOfOperation) {
				t.Errorf("status %d reason %d", r.Status, r.RevocationReason)
			}
			if d := r.NextUpdate.Sub(r.ThisUpdate); d != time.Hour {
				t.Errorf("nextUpdate - thisUpdate = %v, want 1h", d)
			}
			if r.ThisUpdate.After(time.Now()) {
				t.Errorf("thisUpdate %v in the future", r.ThisUpdate)
			}
			cc := resp.Header.Get("Cache-Control")
			if tt.cacheable != strings.HasPrefix(cc, "max-age=") {
				t.Errorf("Cache-Control %q (cacheable %v)", cc, tt.cacheable)
			}
		})
	}

	resp, body := httpDo(t, "PUT", w.ocspURL, "", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD, POST" ||
		string(body) != "OCSP requests are sent with GET or POST (RFC 6960 appendix A)\n" {
		t.Errorf("PUT: %d %q %q", resp.StatusCode, resp.Header.Get("Allow"), body)
	}
	resp, body = httpDo(t, "GET", w.srv.URL+"/elsewhere", "", nil)
	if resp.StatusCode != http.StatusNotFound || string(body) != "not found: the OCSP responder is at /ocsp and the CRL at /crl\n" {
		t.Errorf("unknown path: %d %q", resp.StatusCode, body)
	}
}

// Signed answers are reused until the list changes.
func TestResponderCache(t *testing.T) {
	w := newWorld(t, ServiceConfig{})
	leaf := w.leaf(t, true, false)
	a, err := w.svc.Responder.Response(leaf.SerialNumber)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := w.svc.Responder.Response(leaf.SerialNumber)
	if !bytes.Equal(a, b) {
		t.Error("second answer was signed anew")
	}
	mustRevoke(t, w.svc.List, leaf, time.Time{}, ReasonUnspecified)
	c, _ := w.svc.Responder.Response(leaf.SerialNumber)
	r, err := ocsp.ParseResponseForCert(c, leaf, w.ca.Cert)
	if err != nil || r.Status != ocsp.Revoked {
		t.Fatalf("after revoke: %v %v", r, err)
	}
}

func TestResponderTimes(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	ca := testpki.NewRoot(t, testpki.CAOptions{NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(1, 0, 0)})
	r, err := NewResponder(ResponderConfig{Issuer: ca.Cert, Signer: ca.Key, List: NewList(), Validity: 4 * time.Hour, Backdate: 10 * time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	der, err := r.Response(big.NewInt(42))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ocsp.ParseResponse(der, ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(-10 * time.Minute); !resp.ThisUpdate.Equal(want) {
		t.Errorf("thisUpdate %v, want %v", resp.ThisUpdate, want)
	}
	if want := now.Add(-10*time.Minute + 4*time.Hour); !resp.NextUpdate.Equal(want) {
		t.Errorf("nextUpdate %v, want %v", resp.NextUpdate, want)
	}

	// GET answers carry RFC 5019 caching headers, by the responder's clock.
	leaf := ca.Leaf(t, testpki.LeafOptions{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}).Cert
	reqDER := ocspRequest(t, leaf, ca.Cert, crypto.SHA1)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/"+url.PathEscape(base64.StdEncoding.EncodeToString(reqDER)), nil))
	for k, want := range map[string]string{
		"Cache-Control": "max-age=13800, public, no-transform, must-revalidate",
		"Last-Modified": "Wed, 02 Jan 2030 02:54:05 GMT",
		"Expires":       "Wed, 02 Jan 2030 06:54:05 GMT",
	} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	rec = httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(reqDER)))
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("POST Cache-Control %q, want no-store", got)
	}
}

func TestNewResponderErrors(t *testing.T) {
	ca := testpki.NewRoot(t, testpki.CAOptions{})
	other := testpki.NewRoot(t, testpki.CAOptions{})
	noEKU := ca.Leaf(t, testpki.LeafOptions{CommonName: "not a responder", DNSNames: []string{"x.test"}})
	foreign := other.Leaf(t, testpki.LeafOptions{CommonName: "foreign responder", DNSNames: []string{"x.test"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}})
	expired := ca.Leaf(t, testpki.LeafOptions{CommonName: "old responder", DNSNames: []string{"x.test"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)})
	list := NewList()
	tests := []struct {
		name string
		cfg  ResponderConfig
		want string
	}{
		{"no issuer", ResponderConfig{Signer: ca.Key, List: list}, "revocation: responder: no issuer certificate"},
		{"no key", ResponderConfig{Issuer: ca.Cert, List: list}, "revocation: responder: no signing key"},
		{"no list", ResponderConfig{Issuer: ca.Cert, Signer: ca.Key}, "revocation: responder: no revocation list"},
		{"wrong key", ResponderConfig{Issuer: ca.Cert, Signer: other.Key, List: list}, `revocation: responder: the signing key does not match the public key of "CN=passerelle test root,O=passerelle tests"`},
		{"delegate without EKU", ResponderConfig{Issuer: ca.Cert, Signer: noEKU.Key, ResponderCert: noEKU.Cert, List: list}, `revocation: responder: delegated responder certificate "CN=not a responder,O=passerelle tests" lacks the OCSPSigning extended key usage`},
		{"delegate of another CA", ResponderConfig{Issuer: ca.Cert, Signer: foreign.Key, ResponderCert: foreign.Cert, List: list}, `revocation: responder: delegated responder certificate "CN=foreign responder,O=passerelle tests" is not signed by the issuer "CN=passerelle test root,O=passerelle tests": x509: ECDSA verification failure`},
		{"expired delegate", ResponderConfig{Issuer: ca.Cert, Signer: expired.Key, ResponderCert: expired.Cert, List: list}, `revocation: responder: delegated responder certificate "CN=old responder,O=passerelle tests" is valid only from 2020-01-01T00:00:00Z to 2021-01-01T00:00:00Z`},
		{"negative backdate", ResponderConfig{Issuer: ca.Cert, Signer: ca.Key, List: list, Backdate: -time.Second}, "revocation: responder: negative backdate -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewResponder(tt.cfg)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v\nwant %s", err, tt.want)
			}
		})
	}
}

// A delegated responder (RFC 6960 section 4.2.2.2) is accepted by Check and
// by openssl.
func TestDelegatedResponder(t *testing.T) {
	ca := testpki.NewRoot(t, testpki.CAOptions{})
	d := ca.Leaf(t, testpki.LeafOptions{CommonName: "ocsp responder", DNSNames: []string{"ocsp.test"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}})
	w := newWorld(t, ServiceConfig{Issuer: ca.Cert, Signer: ca.Key, ResponderCert: d.Cert, ResponderKey: d.Key})
	w.ca = ca
	leaf := w.leaf(t, true, false)
	mustRevoke(t, w.svc.List, leaf, time.Time{}, ReasonKeyCompromise)
	res, err := Check(t.Context(), leaf, ca.Cert, Options{})
	if err != nil || res.Status != Revoked {
		t.Fatalf("got %s, %v; want revoked", res.Status, err)
	}
	if _, err := NewService(ServiceConfig{Issuer: ca.Cert, Signer: ca.Key, ResponderCert: d.Cert}); err == nil ||
		err.Error() != "revocation: service: a delegated responder needs both its certificate and its key" {
		t.Errorf("half a delegate: %v", err)
	}
	out := runOpenSSLOCSP(t, w, ca, leaf)
	if !strings.Contains(out, "Response verify OK") || !strings.Contains(out, ": revoked") {
		t.Errorf("openssl with a delegated responder:\n%s", out)
	}
}

func runOpenSSLOCSP(t *testing.T, w *world, ca *testpki.CA, leaf *x509.Certificate) string {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl is required for this test: %v", err)
	}
	dir := t.TempDir()
	issuerFile := ca.WriteCert(t, dir, "ca.pem")
	leafFile := filepath.Join(dir, "leaf.pem")
	if err := os.WriteFile(leafFile, testpki.CertPEM(leaf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), openssl, "ocsp", "-issuer", issuerFile, "-cert", leafFile,
		"-url", w.ocspURL, "-CAfile", issuerFile, "-resp_text")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl ocsp: %v\n%s", err, out)
	}
	return string(out)
}

// openssl, an independent client, agrees with the responder.
func TestOpenSSLOCSP(t *testing.T) {
	w := newWorld(t, ServiceConfig{})
	good := w.leaf(t, true, false)
	revoked := w.leaf(t, true, false)
	mustRevoke(t, w.svc.List, revoked, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), ReasonKeyCompromise)
	out := runOpenSSLOCSP(t, w, w.ca, good)
	if !strings.Contains(out, "Response verify OK") || !strings.Contains(out, "leaf.pem: good") || !strings.Contains(out, "Cert Status: good") {
		t.Errorf("good certificate:\n%s", out)
	}
	out = runOpenSSLOCSP(t, w, w.ca, revoked)
	for _, want := range []string{"Response verify OK", "leaf.pem: revoked", "Reason: keyCompromise", "Revocation Time: Jan  2 03:04:05 2026 GMT"} {
		if !strings.Contains(out, want) {
			t.Errorf("revoked certificate: no %q in\n%s", want, out)
		}
	}
}

// Requests for ever new serials do not grow the responder's memory.
func TestResponderCacheBounded(t *testing.T) {
	ca := testpki.NewRoot(t, testpki.CAOptions{})
	r, err := NewResponder(ResponderConfig{Issuer: ca.Cert, Signer: ca.Key, List: NewList(), CacheSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := r.Response(big.NewInt(int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	r.mu.Lock()
	n := len(r.cache)
	r.mu.Unlock()
	if n != 5 {
		t.Errorf("cache holds %d answers, want 5", n)
	}
}

// GET requests whose base64 holds '/' and '+', escaped or not, and a
// responder mounted under any prefix (RFC 6960 appendix A.1).
func TestResponderGETBase64Specials(t *testing.T) {
	w := newWorld(t, ServiceConfig{})
	var leaf *x509.Certificate
	var b64 string
	for range 500 {
		leaf = w.ca.Leaf(t, testpki.LeafOptions{}).Cert
		b64 = base64.StdEncoding.EncodeToString(ocspRequest(t, leaf, w.ca.Cert, crypto.SHA1))
		if strings.Contains(b64, "/") && strings.Contains(b64, "+") {
			break
		}
	}
	if !strings.Contains(b64, "/") || !strings.Contains(b64, "+") {
		t.Fatalf("no request with both '/' and '+' in its base64 after 500 tries")
	}
	mounted := httptest.NewServer(http.StripPrefix("/deep/under", w.svc.Responder))
	defer mounted.Close()
	for _, u := range []string{
		w.ocspURL + "/" + url.PathEscape(b64),
		w.ocspURL + "/" + url.QueryEscape(b64),
		w.ocspURL + "/" + b64,
		mounted.URL + "/deep/under/x/" + b64,
		w.srv.URL + "/ocsp/" + strings.ReplaceAll(strings.ReplaceAll(b64, "+", "-"), "/", "_"),
	} {
		resp, body := httpDo(t, "GET", u, "", nil)
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
			continue
		}
		if r, err := ocsp.ParseResponseForCert(body, leaf, w.ca.Cert); err != nil || r.Status != ocsp.Good {
			t.Errorf("GET %s: %v %v", u, r, err)
		}
	}
}
