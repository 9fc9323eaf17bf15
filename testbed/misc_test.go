package testbed

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/protocol/policy"
	"github.com/passerelle/passerelle/secure"
)

func TestNewErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort, _ := strconv.Atoi(portOf(busy))
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no dir", Config{}, "testbed: no folder for the testbed root (Config.Dir)"},
		{"base port too high", Config{Dir: t.TempDir(), BasePort: 65530},
			fmt.Sprintf("testbed: base port 65530: the %d ports from it must lie within 1-65535", firstEndpointOffset+len(plans))},
		{"negative base port", Config{Dir: t.TempDir(), BasePort: -1},
			fmt.Sprintf("testbed: base port -1: the %d ports from it must lie within 1-65535", firstEndpointOffset+len(plans))},
		{"bad key type", Config{Dir: t.TempDir(), KeyType: "dsa"}, `testbed: key type "dsa": want ecdsa-p256 or rsa-2048`},
		{"port in use", Config{Dir: t.TempDir(), BasePort: busyPort},
			fmt.Sprintf("testbed: listen on 127.0.0.1:%d for the HTTP server (AIA, CRL, OCSP): listen tcp 127.0.0.1:%d: bind: address already in use", busyPort, busyPort)},
		{"root unreadable", Config{Dir: brokenRootDir(t)},
			"testbed: load testbed root " + "BROKEN" + ": tls: failed to find any PEM data in certificate input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb, err := New(tc.cfg)
			if err == nil {
				tb.Close()
				t.Fatal("New succeeded")
			}
			want := strings.ReplaceAll(tc.want, "BROKEN", filepath.Join(tc.cfg.Dir, rootCertName))
			if err.Error() != want {
				t.Errorf("error\n got %q\nwant %q", err, want)
			}
		})
	}
}

// brokenRootDir holds a root certificate file that is not PEM.
func brokenRootDir(tb testing.TB) string {
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, rootCertName), []byte("not a certificate"), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, rootKeyName), []byte("not a key"), 0o600); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// TestRootPersisted: the root survives restarts (clients install it once),
// the leaves do not; a root about to expire is replaced.
func TestRootPersisted(t *testing.T) {
	dir := t.TempDir()
	first, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	second, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	second.Close()
	if !first.caCertificate().Equal(second.caCertificate()) {
		t.Error("the root changed between two starts")
	}
	leaf := func(tb *Testbed) *x509.Certificate {
		c, err := tb.endpoints[0].getCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf
	}
	if leaf(first).Equal(leaf(second)) {
		t.Error("the trusted endpoint's leaf was reused: leaves must be made afresh at each start")
	}
	if fi, err := os.Stat(filepath.Join(dir, rootKeyName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("root key mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	late := time.Now().Add(rootLifetime - rootRenewBefore/2)
	renewed, created, err := loadOrCreateRoot(dir, "", late)
	if err != nil || !created || renewed.cert.Equal(first.caCertificate()) {
		t.Errorf("a root %v from expiry was kept (created %v, err %v)", rootRenewBefore/2, created, err)
	}
}

// TestSNIRefusesUnknownNames: on the SNI port the name is the endpoint.
// Each refusal is looked for on a testbed of its own: a failed handshake's
// line is rate-limited per listener, one every ratelog.DefaultEvery.
func TestSNIRefusesUnknownNames(t *testing.T) {
	var tb *running
	for _, tc := range []struct{ serverName, log string }{
		{"nope" + NameSuffix, `no testbed endpoint is named \"nope.testbed.localhost\" (want <endpoint>.testbed.localhost)`},
		{"", "no server name (SNI) sent: on the SNI port the server name picks the endpoint, e.g. trusted.testbed.localhost"},
	} {
		tb = startTestbed(t)
		c, err := tls.Dial("tcp", tb.SNIAddress(), &tls.Config{ServerName: tc.serverName, InsecureSkipVerify: true})
		if err == nil {
			c.Close()
			t.Fatalf("handshake for %q succeeded", tc.serverName)
		}
		testutil.Eventually(t, "the refusal of "+strconv.Quote(tc.serverName)+" in the log", 10*time.Second, func() bool {
			return strings.Contains(tb.logs.String(), tc.log)
		})
	}
	// Names are matched without regard to case or a final dot.
	v, err := goStatus(context.Background(), tb.SNIAddress(), "EXPIRED.Testbed.Localhost.", caPool(t, tb.CAFile()))
	if err != nil || v.Status != secure.StatusExpired {
		t.Errorf("EXPIRED.Testbed.Localhost.: %v %v, want expired", v.Status, err)
	}
}

// TestEchoAndShutdown: a server-certificate endpoint speaks seed 001's echo;
// Serve returns on cancellation even with a client still connected.
func TestEchoAndShutdown(t *testing.T) {
	tmp := t.TempDir()
	tb, err := New(Config{Dir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tb.Serve(ctx) }()
	ep := tb.Endpoints()[0]
	c, err := secure.Dial(ctx, ep.Address, secure.ClientConfig{ServerName: ep.ServerName, RootCAs: caPool(t, ep.CAFile)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expect := func(want string) {
		t.Helper()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}
	expect("Connected.")
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	expect("Echo -- hello")
	cancel()
	if !serveReturned(t, done) {
		t.Fatal("Serve did not return with a client connected")
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the connection survived the shutdown")
	}
}

// TestHTTPServer: what the certificates point at is there.
func TestHTTPServer(t *testing.T) {
	tb := startTestbed(t)
	base := "http://" + tb.HTTPAddress()
	get := func(path, wantType string) []byte {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != wantType {
			t.Fatalf("GET %s: %s %q, want 200 %q", path, resp.Status, resp.Header.Get("Content-Type"), wantType)
		}
		return body
	}
	inter, err := x509.ParseCertificate(get("/ca/intermediate.cer", contentTypeCert))
	if err != nil || !inter.Equal(tb.inter.cert) {
		t.Errorf("/ca/intermediate.cer is not the intermediate: %v", err)
	}
	crl, err := x509.ParseRevocationList(get("/crl/root.crl", "application/pkix-crl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(tb.caCertificate()); err != nil {
		t.Errorf("root CRL signature: %v", err)
	}
	var revoked int
	for _, ep := range tb.endpoints {
		if ep.status == secure.StatusRevoked {
			revoked++
		}
	}
	if len(crl.RevokedCertificateEntries) != revoked {
		t.Errorf("root CRL lists %d serials, want %d", len(crl.RevokedCertificateEntries), revoked)
	}
	var eps []Endpoint
	if err := json.Unmarshal(get("/manifest.json", "application/json"), &eps); err != nil || len(eps) != len(plans) {
		t.Errorf("/manifest.json: %d endpoints, %v", len(eps), err)
	}
	if !bytes.Equal(get("/ca.pem", "application/x-pem-file"), certs.MarshalCertsPEM(tb.caCertificate())) {
		t.Error("/ca.pem is not the root")
	}
}

// TestVerdictMessage: the frame is well-formed XML whatever the reason says,
// and bad frames are named.
func TestVerdictMessage(t *testing.T) {
	v := secure.Verdict{Status: secure.StatusInvalid, Reason: `a "quoted" <reason> & more`}
	frame := verdictMessage("client-cert-request", v)
	want := `<passerelle:client-certificate xmlns:passerelle="urn:passerelle:testbed" endpoint="client-cert-request" status="invalid" subject="" issuer="" reason="a &#34;quoted&#34; &lt;reason&gt; &amp; more"/>` + "\x00"
	if string(frame) != want {
		t.Errorf("frame\n got %q\nwant %q", frame, want)
	}
	got, err := ParseVerdict(frame)
	if err != nil || got.Reason != v.Reason || got.Status != v.Status {
		t.Errorf("round trip: %+v, %v", got, err)
	}
	for _, tc := range []struct{ frame, want string }{
		{"<hello/>\x00", `testbed: verdict message "<hello/>\x00": expected element type <client-certificate> but have <hello>`},
		{`<p:client-certificate xmlns:p="urn:passerelle:testbed" status="fine"/>`, `testbed: verdict message "<p:client-certificate xmlns:p=\"urn:passerelle:testbed\" status=\"fine\"/>": unknown certificate status "fine": want one of trusted, unknown, invalid, invalidChain, expired, notYetValid, principalMismatch, revoked, untrustedSigners`},
	} {
		if _, err := ParseVerdict([]byte(tc.frame)); err == nil || err.Error() != tc.want {
			t.Errorf("ParseVerdict(%q) = %v, want %q", tc.frame, err, tc.want)
		}
	}
}

// TestRevokedClientsFile: a malformed line is reported with its place.
func TestRevokedClientsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), revokedClientsName)
	if err := os.WriteFile(path, []byte("# comment\n0a1b\nzz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := readRevokedClients(path)
	want := fmt.Sprintf(`testbed: %s line 3: "zz" is not a hexadecimal serial number`, path)
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

// TestPolicyRequest: like every passerelle listener, each endpoint answers
// a Flash socket policy request, sent in clear before any handshake as
// Flash does on the port it then uses for TLS, and closes.
func TestPolicyRequest(t *testing.T) {
	tb := startTestbed(t)
	want := string(policy.Response(policy.Default()))
	for _, ep := range tb.Endpoints() {
		t.Run(ep.Name, func(t *testing.T) {
			c, err := net.Dial("tcp", ep.Address)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte(policy.Request)); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(c)
			if err != nil || string(got) != want {
				t.Fatalf("policy answer %q, %v; want %q and the close", got, err, want)
			}
		})
	}
}

// TestRSALeaf: RSA leaves also allow keyEncipherment, which TLS 1.2 RSA key
// exchange needs (RFC 5246 section 7.4.2).
func TestRSALeaf(t *testing.T) {
	now := time.Now()
	cert, _, err := issue(certs.KeyRSA2048, nil, certSpec{commonName: "rsa", notBefore: now, notAfter: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if cert.PublicKeyAlgorithm != x509.RSA || cert.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Errorf("RSA leaf: algorithm %v, key usage %b", cert.PublicKeyAlgorithm, cert.KeyUsage)
	}
}

// TestNames: what a leaf covers follows the bound address.
func TestNames(t *testing.T) {
	for _, tc := range []struct {
		address string
		dns     []string
		ips     []string
	}{
		{"127.0.0.1", []string{"expired.testbed.localhost", "localhost"}, []string{"127.0.0.1", "::1"}},
		{"0.0.0.0", []string{"expired.testbed.localhost", "localhost"}, []string{"127.0.0.1", "::1"}},
		{"192.0.2.7", []string{"expired.testbed.localhost", "localhost"}, []string{"127.0.0.1", "::1", "192.0.2.7"}},
		{"testbed.example", []string{"expired.testbed.localhost", "localhost", "testbed.example"}, []string{"127.0.0.1", "::1"}},
	} {
		tb := &Testbed{cfg: Config{Address: tc.address}}
		dns, ips := tb.names("expired")
		var gotIPs []string
		for _, ip := range ips {
			gotIPs = append(gotIPs, ip.String())
		}
		if fmt.Sprint(dns) != fmt.Sprint(tc.dns) || fmt.Sprint(gotIPs) != fmt.Sprint(tc.ips) {
			t.Errorf("address %s: names %v %v, want %v %v", tc.address, dns, gotIPs, tc.dns, tc.ips)
		}
	}
}

// TestMaxConnsOverAllPorts: Config.MaxConns bounds the connections of every
// port together, the HTTP port's included, so a client of one endpoint, or
// of the HTTP port, waits while another endpoint holds the only slot.
func TestMaxConnsOverAllPorts(t *testing.T) {
	tb, err := New(Config{Dir: t.TempDir(), MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tb.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	eps := tb.Endpoints()
	dial := func(ep Endpoint) (net.Conn, error) {
		// The certificates do not matter here (the second is expired): a
		// finished handshake means the connection had a slot.
		d := tls.Dialer{Config: &tls.Config{ServerName: ep.ServerName, InsecureSkipVerify: true}}
		dctx, dcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer dcancel()
		return d.DialContext(dctx, "tcp", ep.Address)
	}
	first, err := dial(eps[0])
	if err != nil {
		t.Fatalf("first client: %v", err)
	}
	if second, err := dial(eps[1]); err == nil {
		second.Close()
		t.Fatal("a second client was served while the first held the only slot")
	}
	first.Close()
	var second net.Conn
	testutil.Eventually(t, "the slot given back", 10*time.Second, func() bool {
		second, err = dial(eps[1])
		return err == nil
	})

	// The HTTP port (AIA, CRL, OCSP, the manifest) is one of the ports:
	// its requests wait too while an endpoint holds the slot.
	get := func() (int, error) {
		hctx, hcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer hcancel()
		req, _ := http.NewRequestWithContext(hctx, http.MethodGet, "http://"+tb.HTTPAddress()+"/manifest.json", nil)
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get(); err == nil {
		t.Fatalf("the HTTP port answered %d while an endpoint held the only slot", code)
	}
	second.Close()
	testutil.Eventually(t, "the HTTP port served once the slot is back", 10*time.Second, func() bool {
		code, err := get()
		return err == nil && code == http.StatusOK
	})
}

// TestEchoLogLineNamesTheClientOnce: the echo endpoints' close line says
// remote_addr once, with the endpoint and the name the client asked for.
func TestEchoLogLineNamesTheClientOnce(t *testing.T) {
	tb := startTestbed(t)
	ep := tb.Endpoints()[0]
	c, err := secure.Dial(context.Background(), ep.Address, secure.ClientConfig{ServerName: ep.ServerName, RootCAs: caPool(t, ep.CAFile)})
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(c, make([]byte, len("Connected.")))
	c.Close()
	want := `level=INFO msg="echo client closed" endpoint=` + ep.Name + ` server_name=` + ep.ServerName + ` remote_addr=` + c.LocalAddr().String() + ` reason=`
	testutil.Eventually(t, "the echo close line", 10*time.Second, func() bool { return strings.Contains(tb.logs.String(), want) })
	for _, l := range strings.Split(tb.logs.String(), "\n") {
		if strings.Contains(l, "echo client closed") && strings.Count(l, "remote_addr=") != 1 {
			t.Errorf("line with remote_addr %d times: %s", strings.Count(l, "remote_addr="), l)
		}
	}
}
