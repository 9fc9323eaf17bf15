package revocation

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
)

func TestCRLPublisherHTTP(t *testing.T) {
	w := newWorld(t, ServiceConfig{})
	leaf := w.leaf(t, false, true)

	fetch := func() *x509.RevocationList {
		t.Helper()
		resp, body := httpDo(t, "GET", w.crlURL, "", nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ContentTypeCRL {
			t.Fatalf("GET %s: %d %q", w.crlURL, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		crl, err := x509.ParseRevocationList(body)
		if err != nil {
			t.Fatalf("parse served CRL: %v", err)
		}
		if err := crl.CheckSignatureFrom(w.ca.Cert); err != nil {
			t.Fatalf("served CRL signature: %v", err)
		}
		return crl
	}
	first := fetch()
	if len(first.RevokedCertificateEntries) != 0 {
		t.Fatalf("fresh CRL lists %d entries", len(first.RevokedCertificateEntries))
	}
	if again := fetch(); again.Number.Cmp(first.Number) != 0 {
		t.Errorf("CRL re-signed without a change: number %v then %v", first.Number, again.Number)
	}
	mustRevoke(t, w.svc.List, leaf, time.Time{}, ReasonAffiliationChanged)
	second := fetch()
	if second.Number.Cmp(first.Number) <= 0 {
		t.Errorf("CRL number did not grow: %v then %v", first.Number, second.Number)
	}
	if n := len(second.RevokedCertificateEntries); n != 1 {
		t.Fatalf("CRL after revoke lists %d entries", n)
	}
	if e := second.RevokedCertificateEntries[0]; e.SerialNumber.Cmp(leaf.SerialNumber) != 0 || e.ReasonCode != int(ReasonAffiliationChanged) {
		t.Errorf("entry %x reason %d", e.SerialNumber, e.ReasonCode)
	}
	if d := second.NextUpdate.Sub(second.ThisUpdate); d != 24*time.Hour {
		t.Errorf("CRL validity %v, want 24h", d)
	}
	// Other paths below /crl serve the same CRL, so "/crl/ca.crl" URLs work.
	resp, _ := httpDo(t, "GET", w.crlURL+"/ca.crl", "", nil)
	if resp.StatusCode != 200 {
		t.Errorf("GET /crl/ca.crl: %d", resp.StatusCode)
	}
	resp, body := httpDo(t, "POST", w.crlURL, "", nil)
	if resp.StatusCode != 405 || string(body) != "a CRL is fetched with GET\n" {
		t.Errorf("POST: %d %q", resp.StatusCode, body)
	}

	// openssl reads the CRL as served and finds the revoked serial.
	dir := t.TempDir()
	der, err := w.svc.CRL.CRL()
	if err != nil {
		t.Fatal(err)
	}
	crlFile := filepath.Join(dir, "ca.crl")
	if err := os.WriteFile(crlFile, der, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), "openssl", "crl", "-inform", "DER", "-in", crlFile, "-noout", "-text",
		"-CAfile", w.ca.WriteCert(t, dir, "ca.pem")).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl crl: %v\n%s", err, out)
	}
	serialHex := strings.ToUpper(leaf.SerialNumber.Text(16))
	if len(serialHex)%2 == 1 {
		serialHex = "0" + serialHex // openssl prints whole bytes
	}
	for _, want := range []string{
		"verify OK",
		"Serial Number: " + serialHex,
		"Affiliation Changed",
		"X509v3 CRL Number",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("openssl crl output lacks %q:\n%s", want, out)
		}
	}
}

func TestNewCRLPublisherErrors(t *testing.T) {
	ca := testpki.NewRoot(t, testpki.CAOptions{})
	notCRLSigner := testpki.NewRoot(t, testpki.CAOptions{CommonName: "no crl sign", NotCA: true})
	list := NewList()
	tests := []struct {
		name string
		cfg  CRLConfig
		want string
	}{
		{"no issuer", CRLConfig{Signer: ca.Key, List: list}, "revocation: CRL publisher: no issuer certificate"},
		{"no key", CRLConfig{Issuer: ca.Cert, List: list}, "revocation: CRL publisher: no signing key"},
		{"no list", CRLConfig{Issuer: ca.Cert, Signer: ca.Key}, "revocation: CRL publisher: no revocation list"},
		{"no cRLSign", CRLConfig{Issuer: notCRLSigner.Cert, Signer: notCRLSigner.Key, List: list}, `revocation: CRL publisher: issuer "CN=no crl sign,O=passerelle tests" may not sign CRLs (no cRLSign key usage)`},
		{"wrong key", CRLConfig{Issuer: ca.Cert, Signer: notCRLSigner.Key, List: list}, `revocation: CRL publisher: the signing key does not match the public key of "CN=passerelle test root,O=passerelle tests"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewCRLPublisher(tt.cfg)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestLoadCRLFile(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(t, ServiceConfig{})
	der, err := w.svc.CRL.CRL()
	if err != nil {
		t.Fatal(err)
	}
	other := newWorld(t, ServiceConfig{})
	der2, _ := other.svc.CRL.CRL()
	block := func(b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: b}) }
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A PEM bundle may mix in certificates, which are skipped.
	bundle := append(append(append([]byte("comment line\n"), testpki.CertPEM(w.ca.Cert)...), block(der)...), block(der2)...)
	tests := []struct {
		name    string
		path    string
		wantN   int
		wantErr string
	}{
		{"DER", write("a.crl", der), 1, ""},
		{"PEM bundle", write("b.pem", bundle), 2, ""},
		{"missing", filepath.Join(dir, "nope.crl"), 0, "revocation: read CRL file: open " + filepath.Join(dir, "nope.crl") + ": no such file or directory"},
		{"empty", write("empty.crl", nil), 0, "revocation: CRL file " + filepath.Join(dir, "empty.crl") + ": empty file, expected a CRL in DER or PEM form"},
		{"certificate only", write("cert.pem", testpki.CertPEM(w.ca.Cert)), 0, "revocation: CRL file " + filepath.Join(dir, "cert.pem") + `: no CRL found, expected DER or PEM blocks of type "X509 CRL", found ["CERTIFICATE"]`},
		{"a certificate in DER", write("cert.der", w.ca.Cert.Raw), 0, "revocation: CRL file " + filepath.Join(dir, "cert.der") + ": this is a DER certificate, not a CRL"},
		{"garbage DER", write("bad.der", []byte{0x30, 0x03, 1, 2, 3}), 0, "revocation: CRL file " + filepath.Join(dir, "bad.der") + ": not a valid DER CRL: x509: malformed tbs crl"},
		{"bad PEM CRL", write("bad.pem", block([]byte{0x30, 0x00})), 0, "revocation: CRL file " + filepath.Join(dir, "bad.pem") + ": PEM CRL number 1: x509: malformed tbs crl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crls, err := LoadCRLFile(tt.path)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got %v\nwant %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(crls) != tt.wantN {
				t.Fatalf("got %d CRLs, %v; want %d", len(crls), err, tt.wantN)
			}
		})
	}
}

// CRL files given by the user: the one of the right issuer decides, others
// are ignored.
func TestCheckCRLFiles(t *testing.T) {
	w := newWorld(t, ServiceConfig{})
	other := newWorld(t, ServiceConfig{})
	leaf := w.leaf(t, false, false)
	crlOf := func(w *world) *x509.RevocationList {
		der, err := w.svc.CRL.CRL()
		if err != nil {
			t.Fatal(err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		return crl
	}
	res, err := Check(t.Context(), leaf, w.ca.Cert, Options{CRLs: []*x509.RevocationList{crlOf(other)}})
	if err != nil || res.Status != Unknown || res.Source != "" {
		t.Errorf("only a foreign CRL: %+v, %v", res, err)
	}
	res, err = Check(t.Context(), leaf, w.ca.Cert, Options{CRLs: []*x509.RevocationList{crlOf(other), crlOf(w)}})
	if err != nil || res.Status != Good || res.Source != SourceCRLFile {
		t.Errorf("good: %+v, %v", res, err)
	}
	old := crlOf(w)
	mustRevoke(t, w.svc.List, leaf, time.Time{}, ReasonKeyCompromise)
	// The older CRL says good, the newer one revoked: revoked wins.
	res, err = Check(t.Context(), leaf, w.ca.Cert, Options{CRLs: []*x509.RevocationList{old, crlOf(w)}})
	if err != nil || res.Status != Revoked || res.Source != SourceCRLFile || res.Reason != ReasonKeyCompromise {
		t.Errorf("revoked: %+v, %v", res, err)
	}
}

// Stale answers (past nextUpdate) never say good; they still prove a final
// revocation, but not a hold.
func TestCheckStale(t *testing.T) {
	past := time.Now().Add(-72 * time.Hour)
	clock := func() time.Time { return past }
	w := newWorld(t, ServiceConfig{Now: clock})
	good := w.leaf(t, true, true)
	revoked := w.leaf(t, true, true)
	held := w.leaf(t, true, true)
	mustRevoke(t, w.svc.List, revoked, past.Add(-time.Hour), ReasonKeyCompromise)
	mustRevoke(t, w.svc.List, held, past.Add(-time.Hour), ReasonCertificateHold)
	der, err := w.svc.CRL.CRL()
	if err != nil {
		t.Fatal(err)
	}
	crl, _ := x509.ParseRevocationList(der)
	staple := func(c *x509.Certificate) []byte {
		b, err := w.svc.Responder.Response(c.SerialNumber)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tt := range []struct {
		name   string
		leaf   *x509.Certificate
		opts   Options
		source string
	}{
		{"crl file", good, Options{CRLs: []*x509.RevocationList{crl}}, SourceCRLFile},
		{"crl distribution point", good, Options{Sources: UseCRLDistributionPoints}, SourceCRL},
		{"ocsp responder", good, Options{Sources: UseOCSP}, SourceOCSP},
		{"staple", good, Options{Stapled: staple(good)}, SourceOCSPStaple},
		{"crl file, hold", held, Options{CRLs: []*x509.RevocationList{crl}}, SourceCRLFile},
		{"staple, hold", held, Options{Stapled: staple(held)}, SourceOCSPStaple},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Check(t.Context(), tt.leaf, w.ca.Cert, tt.opts)
			if res.Status != Unknown {
				t.Errorf("status %s, want unknown", res.Status)
			}
			var ue *UnreachableError
			if !errors.As(err, &ue) || !errors.Is(err, ErrStale) || ue.Source != tt.source {
				t.Fatalf("got %v, want a stale *UnreachableError from %s", err, tt.source)
			}
			tu, _ := time.Parse(time.RFC3339, past.Add(-time.Minute).UTC().Truncate(time.Second).Format(time.RFC3339))
			wantTail := fmt.Sprintf("no usable answer: answer is out of date (thisUpdate %s, nextUpdate ", tu.Format(time.RFC3339))
			if !strings.Contains(err.Error(), wantTail) {
				t.Errorf("message %q lacks %q", err, wantTail)
			}
			if !softFailable(err) {
				t.Error("a stale answer must be soft-failable")
			}
		})
	}
	for _, opts := range []Options{{CRLs: []*x509.RevocationList{crl}}, {Stapled: staple(revoked)}, {Sources: UseCRLDistributionPoints}} {
		res, err := Check(t.Context(), revoked, w.ca.Cert, opts)
		if err != nil || res.Status != Revoked || res.Reason != ReasonKeyCompromise {
			t.Errorf("stale revocation: %+v, %v; want revoked", res, err)
		}
	}
}

// Of several CRLs of one issuer, a final revocation in any decides, and
// otherwise the newest speaks: a hold released since an older CRL is over.
func TestCheckCRLFilesNewestWins(t *testing.T) {
	ca := testpki.NewRoot(t, testpki.CAOptions{})
	leaf := ca.Leaf(t, testpki.LeafOptions{}).Cert
	list := NewList()
	now := time.Now()
	at := now
	pub, err := NewCRLPublisher(CRLConfig{Issuer: ca.Cert, Signer: ca.Key, List: list, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	snapshot := func() *x509.RevocationList {
		t.Helper()
		der, err := pub.CRL()
		if err != nil {
			t.Fatal(err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		return crl
	}
	at = now.Add(-2 * time.Hour)
	mustRevoke(t, list, leaf, at, ReasonCertificateHold)
	held := snapshot()
	at = now.Add(-time.Hour)
	list.Unrevoke(leaf.SerialNumber)
	released := snapshot()
	check := func(crls ...*x509.RevocationList) Status {
		t.Helper()
		res, err := Check(t.Context(), leaf, ca.Cert, Options{CRLs: crls, Now: now})
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		return res.Status
	}
	if s := check(held, released); s != Good {
		t.Errorf("hold then release: %s, want good", s)
	}
	if s := check(released, held); s != Good {
		t.Errorf("release then hold (files in any order): %s, want good", s)
	}
	if s := check(held); s != Revoked {
		t.Errorf("hold alone: %s, want revoked", s)
	}
	// A CRL that later drops a key compromise does not undo it.
	at = now.Add(-50 * time.Minute)
	mustRevoke(t, list, leaf, at, ReasonKeyCompromise)
	compromised := snapshot()
	at = now.Add(-40 * time.Minute)
	list.Unrevoke(leaf.SerialNumber)
	dropped := snapshot()
	if s := check(dropped, compromised); s != Revoked {
		t.Errorf("key compromise in an older file: %s, want revoked", s)
	}
}

// A distribution point serving the CRL of another CA gives an answer that
// cannot be trusted, with a message naming both.
func TestCheckForeignCRLAtDistributionPoint(t *testing.T) {
	w := newWorld(t, ServiceConfig{})
	other := testpki.NewRoot(t, testpki.CAOptions{CommonName: "other root"})
	leaf := other.Leaf(t, testpki.LeafOptions{CRLDistributionPoints: []string{w.crlURL}}).Cert
	_, err := Check(t.Context(), leaf, other.Cert, Options{})
	want := `revocation: crl ` + w.crlURL + `: invalid answer: the CRL is issued by "CN=passerelle test root,O=passerelle tests", not by the certificate's issuer "CN=other root,O=passerelle tests"`
	var ie *InvalidResponseError
	if !errors.As(err, &ie) || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	// Same name, another key: a CA that was re-created.
	twin := testpki.NewRoot(t, testpki.CAOptions{})
	leaf = twin.Leaf(t, testpki.LeafOptions{CRLDistributionPoints: []string{w.crlURL}}).Cert
	_, err = Check(t.Context(), leaf, twin.Cert, Options{})
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), `invalid answer: the CRL is signed by another key of "CN=passerelle test root,O=passerelle tests" (authority key identifier `) {
		t.Errorf("twin CA: got %v", err)
	}
}

// openssl's own path validation with our CRL: good, then revoked.
func TestOpenSSLVerifyWithCRL(t *testing.T) {
	w := newWorld(t, ServiceConfig{})
	leaf := w.leaf(t, false, true)
	dir := t.TempDir()
	caFile := w.ca.WriteCert(t, dir, "ca.pem")
	leafFile := filepath.Join(dir, "leaf.pem")
	if err := os.WriteFile(leafFile, testpki.CertPEM(leaf), 0o600); err != nil {
		t.Fatal(err)
	}
	verify := func() string {
		t.Helper()
		der, err := w.svc.CRL.CRL()
		if err != nil {
			t.Fatal(err)
		}
		crlFile := filepath.Join(dir, "ca.crl.pem")
		if err := os.WriteFile(crlFile, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		out, _ := exec.CommandContext(t.Context(), "openssl", "verify", "-crl_check", "-CAfile", caFile, "-CRLfile", crlFile, leafFile).CombinedOutput()
		return string(out)
	}
	if out := verify(); !strings.Contains(out, "leaf.pem: OK") {
		t.Errorf("before revocation:\n%s", out)
	}
	mustRevoke(t, w.svc.List, leaf, time.Time{}, ReasonKeyCompromise)
	if out := verify(); !strings.Contains(out, "certificate revoked") {
		t.Errorf("after revocation:\n%s", out)
	}
}
