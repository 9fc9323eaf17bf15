package testacme

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"

	"github.com/passerelle/passerelle/internal/testutil"
)

// Name is the name tests get ACME certificates for. It is under .test
// (RFC 6761), so it can never reach a real resolver by mistake; the test
// DNS server resolves it, like every other name, to 127.0.0.1.
const Name = "chat.passerelle.test"

// Pebble is an in-process Pebble ACME server. Its VA validates TLS-ALPN-01
// by connecting to the port given to Start on whatever address the test
// DNS server gives for a name, which is always 127.0.0.1.
type Pebble struct {
	srv       *httptest.Server
	dirURL    string
	httpsRoot string
	roots     *x509.CertPool
}

// Start runs a DNS server and a Pebble ACME server on loopback, both
// stopped when the test ends. Pebble validates TLS-ALPN-01 challenges on
// tlsPort and issues certificates valid for validity.
//
// Start sets environment variables for Pebble with tb.Setenv, so the test
// (and its parents) must not run in parallel.
func Start(tb testing.TB, tlsPort int, validity time.Duration) *Pebble {
	tb.Helper()
	dnsAddr := startDNS(tb)
	// Validate at once instead of after a random pause of up to five
	// seconds, and never reject a good nonce: both are Pebble's chaos
	// features, not validation shortcuts. Never reuse an authorization
	// either, so every renewal is validated again through the listener:
	// Pebble still reuses one of the same account one time in a hundred
	// at 0 (a draw from 0 to 99 must be above it), so a test that needs a
	// renewal validated renews from another account.
	tb.Setenv("PEBBLE_VA_NOSLEEP", "1")
	tb.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	tb.Setenv("PEBBLE_AUTHZREUSE", "0")
	logger := log.New(io.Discard, "pebble ", 0)
	if testing.Verbose() {
		logger = log.New(os.Stderr, "pebble ", log.Lmicroseconds)
	}
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1,
		map[string]ca.Profile{"default": {Description: "test", ValidityPeriod: uint64(validity / time.Second)}})
	validator := va.New(logger, 0, tlsPort, false, dnsAddr, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewUnstartedServer(front.Handler())
	srv.Config.ErrorLog = logger
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	root := filepath.Join(tb.TempDir(), "pebble-https-root.pem")
	if err := os.WriteFile(root, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		tb.Fatalf("testacme: write the HTTPS root: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(authority.GetRootCert(0).Cert)
	return &Pebble{srv: srv, dirURL: srv.URL + wfe.DirectoryPath, httpsRoot: root, roots: roots}
}

// DirectoryURL is the ACME directory URL (acme.ca).
func (p *Pebble) DirectoryURL() string { return p.dirURL }

// HTTPSRootFile is a PEM file holding the certificate of the server's HTTPS
// endpoint, to trust for talking to the CA (acme.ca_root).
func (p *Pebble) HTTPSRootFile() string { return p.httpsRoot }

// Roots holds the root that issues Pebble's certificates, for clients
// verifying a certificate obtained from it.
func (p *Pebble) Roots() *x509.CertPool { return p.roots }

// Addr is the host:port of the HTTPS endpoint, as it appears in dial errors.
func (p *Pebble) Addr() string { return strings.TrimPrefix(p.srv.URL, "https://") }

// Close stops the ACME server (not the DNS server): from then on the CA
// cannot be reached. Calling it again is harmless.
func (p *Pebble) Close() { p.srv.Close() }

// startDNS runs a DNS server on 127.0.0.1 (TCP, as Pebble's VA asks over
// TCP) answering 127.0.0.1 to every A question and nothing to the rest.
func startDNS(tb testing.TB) string {
	tb.Helper()
	ln := testutil.Listen(tb)
	srv := &dns.Server{Listener: ln, Net: "tcp", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	tb.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}
