package secure

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
)

// serverCase is one server certificate and what a client must think of it.
type serverCase struct {
	name string
	// build returns what the server presents and the exact reason expected.
	build  func(t *testing.T, w *world) (tls.Certificate, string)
	sni    string // server name asked for; "" uses 127.0.0.1
	want   Status
	ossl   int // openssl s_client verify code for the same listener
	client func(w *world, cfg *ClientConfig)
}

var unsupportedCritical = pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1}, Critical: true, Value: []byte{0x05, 0x00}}

func serverCases(t *testing.T) []serverCase {
	day := 24 * time.Hour
	return []serverCase{
		{name: "trusted", sni: "localhost", want: StatusTrusted, ossl: 0,
			build: func(t *testing.T, w *world) (tls.Certificate, string) {
				inter := w.root.Intermediate(t, testpki.CAOptions{})
				return inter.Leaf(t, testpki.LeafOptions{}).TLS(), "certificate chain verified for localhost"
			}},
		{name: "expired", sni: "localhost", want: StatusExpired, ossl: 10,
			build: func(t *testing.T, w *world) (tls.Certificate, string) {
				l := w.root.Leaf(t, testpki.LeafOptions{NotBefore: time.Now().Add(-2 * day), NotAfter: time.Now().Add(-day)})
				return l.TLS(), "certificate expired on " + l.Cert.NotAfter.UTC().Format(time.RFC3339)
			}},
		{name: "not yet valid", sni: "localhost", want: StatusNotYetValid, ossl: 9,
			build: func(t *testing.T, w *world) (tls.Certificate, string) {
				l := w.root.Leaf(t, testpki.LeafOptions{NotBefore: time.Now().Add(day), NotAfter: time.Now().Add(2 * day)})
				return l.TLS(), "certificate is not valid before " + l.Cert.NotBefore.UTC().Format(time.RFC3339)
			}},
		{name: "principal mismatch", sni: "localhost", want: StatusPrincipalMismatch, ossl: 62,
			build: func(t *testing.T, w *world) (tls.Certificate, string) {
				l := w.root.Leaf(t, testpki.LeafOptions{DNSNames: []string{"example.org"}})
				return l.TLS(), "certificate is valid for example.org, not localhost"
			}},
		{name: "self-signed", sni: "localhost", want: StatusUntrustedSigners, ossl: 18,
			build: func(t *testing.T, w *world) (tls.Certificate, string) {
				return selfSigned(t, false).TLS(), `self-signed certificate "self-signed localhost" is not trusted`
			}},
		{name: "unknown issuer", sni: "localhost", want: StatusUntrustedSigners, ossl: 21, // 21: unable to verify the first certificate (a lone leaf)
			build: func(t *testing.T, w *world) (tls.Certificate, string) {
				return w.other.Leaf(t, testpki.LeafOptions{}).TLS(), `issuer "CN=someone else,O=passerelle tests" of "localhost" is not a trusted root and was not sent`
			}},
		{name: "untrusted root sent along", sni: "localhost", want: StatusUntrustedSigners, ossl: 19,
			build: func(t *testing.T, w *world) (tls.Certificate, string) {
				c := w.other.Leaf(t, testpki.LeafOptions{}).TLS()
				c.Certificate = append(c.Certificate, w.other.Cert.Raw)
				return c, `root "someone else" is not trusted`
			}},
		{name: "non-CA intermediate", sni: "localhost", want: StatusInvalidChain, ossl: 32, // 32: the intermediate may not sign certificates
			build: func(t *testing.T, w *world) (tls.Certificate, string) {
				inter := w.root.Intermediate(t, testpki.CAOptions{CommonName: "not a CA", NotCA: true})
				return inter.Leaf(t, testpki.LeafOptions{}).TLS(), `"not a CA" signed "localhost" but is not a CA certificate`
			}},
		{name: "bad signature", sni: "localhost", want: StatusInvalidChain, ossl: 7,
			build: func(t *testing.T, w *world) (tls.Certificate, string) {
				inter := w.root.Intermediate(t, testpki.CAOptions{CommonName: "honest intermediate"})
				return tampered(t, inter.Leaf(t, testpki.LeafOptions{})).TLS(), `the signature on "localhost" does not verify with the key of "honest intermediate"`
			}},
		{name: "path length", sni: "localhost", want: StatusInvalidChain, ossl: 25,
			build: func(t *testing.T, w *world) (tls.Certificate, string) {
				i1 := w.root.Intermediate(t, testpki.CAOptions{CommonName: "pathlen zero", MaxPathLenSet: true, MaxPathLen: 0})
				i2 := i1.Intermediate(t, testpki.CAOptions{CommonName: "one too many"})
				return i2.Leaf(t, testpki.LeafOptions{}).TLS(), `path length constraint of "pathlen zero" (0) exceeded by 1 intermediate(s)`
			}},
		{name: "name constraint", sni: "localhost", want: StatusInvalidChain, ossl: 47,
			build: func(t *testing.T, w *world) (tls.Certificate, string) {
				inter := w.root.Intermediate(t, testpki.CAOptions{CommonName: "example.org only", PermittedDNSDomains: []string{"example.org"}})
				return inter.Leaf(t, testpki.LeafOptions{DNSNames: []string{"localhost"}}).TLS(), `a root or intermediate certificate is not authorized to sign for this name: DNS name "localhost" is not permitted by any constraint`
			}},
		{name: "expired intermediate", sni: "localhost", want: StatusInvalidChain, ossl: 10,
			build: func(t *testing.T, w *world) (tls.Certificate, string) {
				inter := w.root.Intermediate(t, testpki.CAOptions{CommonName: "old intermediate", NotBefore: time.Now().Add(-3 * day), NotAfter: time.Now().Add(-day)})
				return inter.Leaf(t, testpki.LeafOptions{}).TLS(), `issuer "old intermediate" expired on ` + inter.Cert.NotAfter.UTC().Format(time.RFC3339)
			}},
		{name: "missing intermediate behind AIA", sni: "localhost", want: StatusInvalidChain, ossl: 21, // openssl does not fetch AIA issuers
			build: func(t *testing.T, w *world) (tls.Certificate, string) {
				inter := w.root.Intermediate(t, testpki.CAOptions{CommonName: "forgotten intermediate"})
				url := w.publish(inter.Cert, "forgotten.der")
				l := inter.Leaf(t, testpki.LeafOptions{IssuingCertificateURL: []string{url}})
				c := l.TLS()
				c.Certificate = c.Certificate[:1] // the server forgets its intermediate
				return c, `the peer did not send the intermediate "forgotten intermediate" (found at ` + url + ")"
			}},
		{name: "missing intermediate, AIA fetch off", sni: "localhost", want: StatusUntrustedSigners, ossl: 21, // 21: unable to verify the first certificate (a lone leaf)
			client: func(w *world, cfg *ClientConfig) { cfg.NoAIAFetch = true },
			build: func(t *testing.T, w *world) (tls.Certificate, string) {
				inter := w.root.Intermediate(t, testpki.CAOptions{CommonName: "forgotten intermediate"})
				l := inter.Leaf(t, testpki.LeafOptions{IssuingCertificateURL: []string{w.publish(inter.Cert, "forgotten2.der")}})
				c := l.TLS()
				c.Certificate = c.Certificate[:1]
				return c, `issuer "CN=forgotten intermediate,O=passerelle tests" of "localhost" is not a trusted root and was not sent`
			}},
		{name: "client certificate on a server", sni: "localhost", want: StatusInvalid, ossl: 26,
			build: func(t *testing.T, w *world) (tls.Certificate, string) {
				l := w.root.Leaf(t, testpki.LeafOptions{DNSNames: []string{"localhost"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
				return l.TLS(), "certificate is not for server authentication (extended key usage)"
			}},
		{name: "unsupported critical extension", sni: "localhost", want: StatusInvalid, ossl: 34,
			build: func(t *testing.T, w *world) (tls.Certificate, string) {
				l := w.root.Leaf(t, testpki.LeafOptions{ExtraExtensions: []pkix.Extension{unsupportedCritical}})
				return l.TLS(), "certificate carries an unsupported critical extension 1.3.6.1.4.1.55555.1"
			}},
		{name: "revoked by CRL distribution point", sni: "localhost", want: StatusRevoked, ossl: 23,
			build: func(t *testing.T, w *world) (tls.Certificate, string) {
				l := w.root.Leaf(t, testpki.LeafOptions{CRLDistributionPoints: []string{w.crlURL}})
				w.revoke(t, l)
				return l.TLS(), revokedReason(w, l, "crl "+w.crlURL)
			}},
		{name: "revoked by OCSP responder", sni: "localhost", want: StatusRevoked, ossl: 0, // s_client does not ask responders
			build: func(t *testing.T, w *world) (tls.Certificate, string) {
				l := w.root.Leaf(t, testpki.LeafOptions{OCSPServer: []string{w.ocspURL}})
				w.revoke(t, l)
				return l.TLS(), revokedReason(w, l, "ocsp "+w.ocspURL)
			}},
		{name: "revoked by stapled OCSP", sni: "localhost", want: StatusRevoked, ossl: 0, // s_client -status shows the staple, the code stays 0
			build: func(t *testing.T, w *world) (tls.Certificate, string) {
				l := w.root.Leaf(t, testpki.LeafOptions{})
				w.revoke(t, l)
				return w.stapled(t, l), revokedReason(w, l, "ocsp-staple")
			}},
	}
}

func revokedReason(w *world, l *testpki.Leaf, source string) string {
	e, _ := w.rev.List.Lookup(l.Cert.SerialNumber)
	return fmt.Sprintf("certificate revoked on %s (keyCompromise) according to %s", e.RevokedAt.UTC().Format(time.RFC3339), source)
}

// TestServerCertificateStatuses runs every server-side defect through a real
// handshake, then asks openssl s_client about the same listener.
func TestServerCertificateStatuses(t *testing.T) {
	w := newWorld(t)
	for _, tc := range serverCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			cert, reason := tc.build(t, w)
			ts := startServer(t, ServerConfig{GetCertificate: staticCert(cert)}, nil)
			cfg := ClientConfig{ServerName: tc.sni, RootCAs: w.root.Pool()}
			if tc.client != nil {
				tc.client(w, &cfg)
			}
			c, err := Dial(dialCtx(t), ts.addr, cfg)
			var v Verdict
			if tc.want == StatusTrusted {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				v = c.Verdict()
				c.Close()
			} else {
				var he *HandshakeError
				if !errors.As(err, &he) {
					t.Fatalf("Dial: %v (%T), want *HandshakeError", err, err)
				}
				v = he.Verdict
				if want := fmt.Sprintf("tls handshake: server certificate %s: %s", tc.want, reason); err.Error() != want {
					t.Errorf("error\n got %q\nwant %q", err, want)
				}
				if len(v.Certificates) == 0 || string(v.Certificates[0].Raw) != string(cert.Certificate[0]) {
					t.Errorf("verdict does not carry the presented leaf")
				}
			}
			if v.Status != tc.want || v.Reason != reason {
				t.Errorf("verdict\n got %s %q\nwant %s %q", v.Status, v.Reason, tc.want, reason)
			}

			extra := []string{}
			if tc.want == StatusRevoked && tc.ossl == 23 {
				extra = append(extra, "-crl_check", "-CRL", w.crlFile(t), "-CRLform", "DER")
			}
			if code := opensslClientCode(t, ts.addr, w.rootFile, tc.sni, extra...); code != tc.ossl {
				t.Errorf("openssl s_client verify code %d, want %d", code, tc.ossl)
			}
		})
	}
}

// TestRevocationCrossChecks asks openssl about the OCSP cases s_client's
// verify code cannot show: the responder itself and the stapled answer.
func TestRevocationCrossChecks(t *testing.T) {
	w := newWorld(t)
	l := w.root.Leaf(t, testpki.LeafOptions{OCSPServer: []string{w.ocspURL}})
	w.revoke(t, l)
	leafFile := testpki.CertPEM(l.Cert)
	dir := t.TempDir()
	lf := dir + "/leaf.pem"
	writeTestFile(t, lf, leafFile)
	out := runOpenSSL(t, nil, "ocsp", "-issuer", w.rootFile, "-cert", lf, "-url", w.ocspURL, "-CAfile", w.rootFile, "-no_nonce")
	contains(t, out, lf+": revoked")

	ts := startServer(t, ServerConfig{GetCertificate: staticCert(w.stapled(t, l))}, nil)
	out = runOpenSSL(t, nil, "s_client", "-connect", ts.addr, "-CAfile", w.rootFile, "-status")
	contains(t, out, "Cert Status: revoked")
}

// TestRevocationModes checks soft-fail and hard-fail against a responder
// that does not answer, and off against a revoked certificate.
func TestRevocationModes(t *testing.T) {
	w := newWorld(t)
	dead := "http://" + closedAddr(t) + "/ocsp"
	unreachable := w.root.Leaf(t, testpki.LeafOptions{OCSPServer: []string{dead}})
	silent := w.root.Leaf(t, testpki.LeafOptions{})
	revoked := w.root.Leaf(t, testpki.LeafOptions{CRLDistributionPoints: []string{w.crlURL}})
	w.revoke(t, revoked)
	crls := loadCRLs(t, w.crlFile(t))
	garbage := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { io.WriteString(rw, "not a CRL") }))
	defer garbage.Close()
	forged := w.root.Leaf(t, testpki.LeafOptions{CRLDistributionPoints: []string{garbage.URL + "/crl"}})

	tests := []struct {
		name   string
		leaf   *testpki.Leaf
		mode   RevocationMode
		crls   []*x509.RevocationList
		want   Status
		reason string
		rev    RevocationStatus
	}{
		{"soft, responder down", unreachable, RevocationSoft, nil, StatusTrusted, "certificate chain verified for localhost", RevocationUnknown},
		{"hard, responder down", unreachable, RevocationHard, nil, StatusInvalid, "revocation status unavailable and revocation is hard-fail: revocation: ocsp " + dead + ": no usable answer: ", RevocationUnknown},
		{"hard, no source named", silent, RevocationHard, nil, StatusInvalid, "revocation status unavailable and revocation is hard-fail: the certificate names no OCSP responder and no CRL distribution point", RevocationUnknown},
		{"soft, no source named", silent, RevocationSoft, nil, StatusTrusted, "certificate chain verified for localhost", RevocationUnknown},
		{"off, revoked", revoked, RevocationOff, nil, StatusTrusted, "certificate chain verified for localhost", RevocationUnchecked},
		{"hard, CRL file", silent, RevocationHard, crls, StatusTrusted, "certificate chain verified for localhost", RevocationGood},
		{"soft, answer that does not parse", forged, RevocationSoft, nil, StatusInvalid, "revocation answer cannot be trusted: revocation: crl " + garbage.URL + "/crl: invalid answer: ", RevocationBad},
		{"soft, revoked", revoked, RevocationSoft, nil, StatusRevoked, revokedReason(w, revoked, "crl "+w.crlURL), RevocationRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := tlsServer(t, tt.leaf)
			c, err := Dial(dialCtx(t), ts.addr, ClientConfig{ServerName: "localhost", RootCAs: w.root.Pool(), Revocation: tt.mode, CRLs: tt.crls})
			var v Verdict
			if err == nil {
				v = c.Verdict()
				c.Close()
			} else if he := (*HandshakeError)(nil); errors.As(err, &he) {
				v = he.Verdict
			} else {
				t.Fatalf("Dial: %v", err)
			}
			if v.Status != tt.want || !strings.HasPrefix(v.Reason, tt.reason) {
				t.Errorf("verdict %s %q, want %s %q...", v.Status, v.Reason, tt.want, tt.reason)
			}
			if v.Revocation.Status != tt.rev {
				t.Errorf("revocation status %q, want %q", v.Revocation.Status, tt.rev)
			}
		})
	}
}
