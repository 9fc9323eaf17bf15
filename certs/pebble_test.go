package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testacme"
	"github.com/passerelle/passerelle/internal/testutil"
)

// testACMEName is the name the tests get ACME certificates for; the test
// DNS server resolves every name to 127.0.0.1.
const testACMEName = testacme.Name

// acmeListener is the passerelle TLS listener under test, bound before the
// manager asks for a certificate so that Pebble's VA reaches it. Until the
// source exists, handshakes go straight to the manager's ACME config, which
// answers challenges; afterwards to the source.
type acmeListener struct {
	ln     net.Listener
	port   int
	src    atomic.Pointer[Source]
	refuse atomic.Bool // fail every handshake, challenges included
}

func newACMEListener(t *testing.T) *acmeListener {
	t.Helper()
	ln := testutil.Listen(t)
	return &acmeListener{ln: ln, port: ln.Addr().(*net.TCPAddr).Port}
}

func (l *acmeListener) serve(t *testing.T, m *Manager) string {
	t.Helper()
	m.mu.Lock()
	st, err := m.acmeConfig()
	m.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	get := func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if l.refuse.Load() {
			return nil, errors.New("refusing handshakes")
		}
		if s := l.src.Load(); s != nil {
			return s.GetCertificate(h)
		}
		return st.cfg.GetCertificate(h)
	}
	return echoOn(t, l.ln, get, []string{acmeTLS1Protocol})
}

func acmeTestConfig(p *testacme.Pebble, port int) ACMEConfig {
	return ACMEConfig{CA: p.DirectoryURL(), Email: "ops@passerelle.test", Agree: true, CARoot: p.HTTPSRootFile(),
		TLSALPNPort: port, ListenHost: "127.0.0.1"}
}

func TestACMEObtainServeAndRestartWithCADown(t *testing.T) {
	l := newACMEListener(t)
	p := testacme.Start(t, l.port, 90*24*time.Hour)
	dataDir := t.TempDir()
	acmeCfg := acmeTestConfig(p, l.port)

	logger, logs := testutil.Logger(t, slog.LevelDebug)
	m := newTestManager(t, ManagerConfig{DataDir: dataDir, Logger: logger, ACME: acmeCfg})
	addr := l.serve(t, m)
	src, err := m.Source(context.Background(), TLSSpec{Mode: ModeACME, Names: []string{testACMEName}})
	if err != nil {
		t.Fatalf("obtain from Pebble: %v\n%s", err, logs)
	}
	l.src.Store(src)
	if strings.Join(src.NextProtos, ",") != acmeTLS1Protocol {
		t.Errorf("NextProtos = %v, want [acme-tls/1]", src.NextProtos)
	}
	if !strings.Contains(logs.String(), `msg="certificate ready" server_name=`+testACMEName+` mode=acme`) || !strings.Contains(logs.String(), "origin=obtained") {
		t.Errorf("log lacks the obtained line:\n%s", logs)
	}
	if !strings.Contains(logs.String(), `msg="served key authentication certificate"`) {
		t.Errorf("the challenge was not answered by the listener:\n%s", logs)
	}
	// A real client verifies the chain up to Pebble's root.
	leaf, err := dialLeaf(t, addr, testACMEName, p.Roots())
	if err != nil {
		t.Fatalf("verify against Pebble's root: %v", err)
	}
	if !strings.HasPrefix(leaf.Issuer.CommonName, "Pebble Intermediate") {
		t.Errorf("issuer = %q", leaf.Issuer.CommonName)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	if testing.Verbose() {
		t.Logf("first start:\n%s", logs)
	}

	// Pebble goes away; a restart serves the stored certificate and says so.
	p.Close()
	logger2, logs2 := testutil.Logger(t, slog.LevelDebug)
	m2 := newTestManager(t, ManagerConfig{DataDir: dataDir, Logger: logger2, ACME: acmeCfg})
	src2, err := m2.Source(context.Background(), TLSSpec{Mode: ModeACME, Names: []string{testACMEName}})
	if err != nil {
		t.Fatalf("restart with the CA down: %v\n%s", err, logs2)
	}
	want := `level=WARN msg="ACME CA unreachable: serving the stored certificate; renewal will be retried in the background" server_name=` + testACMEName + ` acme_ca=` + p.DirectoryURL()
	if !strings.Contains(logs2.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs2)
	}
	leaf2, err := dialLeaf(t, echoServer(t, src2.GetCertificate, src2.NextProtos), testACMEName, p.Roots())
	if err != nil {
		t.Fatal(err)
	}
	if leaf2.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("restart served serial %x, want the stored %x", leaf2.SerialNumber, leaf.SerialNumber)
	}

	if testing.Verbose() {
		t.Logf("restart:\n%s", logs2)
	}

	// With nothing stored and the CA down, the error says what to fix.
	m3 := newTestManager(t, ManagerConfig{DataDir: t.TempDir(), ACME: acmeCfg})
	_, err = m3.Source(context.Background(), TLSSpec{Mode: ModeACME, Names: []string{testACMEName}})
	host := p.Addr()
	wantErr := fmt.Sprintf(`no certificate for %s: the ACME CA %s cannot be reached (Get %q: dial tcp %s: connect: connection refused); check acme.ca and the network`,
		testACMEName, p.DirectoryURL(), p.DirectoryURL(), host)
	if err == nil || err.Error() != wantErr {
		t.Fatalf("error = %v\nwant    %s", err, wantErr)
	}
	var ae *ACMEError
	if !errors.As(err, &ae) || !ae.Unreachable {
		t.Errorf("error is not an unreachable *ACMEError: %#v", err)
	}
}

func TestACMERenewalThroughListener(t *testing.T) {
	l := newACMEListener(t)
	// Certificates of 6 seconds, renewed once half their life is gone
	// (RenewalWindowRatio 0.5) or earlier when Pebble's renewal information
	// (ARI) picks an earlier time; checking every 200ms the test sees the
	// renewal within about three seconds.
	p := testacme.Start(t, l.port, 6*time.Second)
	dataDir := t.TempDir()
	acmeCfg := acmeTestConfig(p, l.port)
	logger, logs := testutil.Logger(t, slog.LevelDebug)
	m := newTestManager(t, ManagerConfig{DataDir: dataDir, Logger: logger, ACME: acmeCfg,
		RenewCheckInterval: 200 * time.Millisecond, RenewalWindowRatio: 0.5})
	addr := l.serve(t, m)
	src, err := m.Source(context.Background(), TLSSpec{Mode: ModeACME, Names: []string{testACMEName}})
	if err != nil {
		t.Fatalf("obtain: %v\n%s", err, logs)
	}
	l.src.Store(src)
	first, err := dialLeaf(t, addr, testACMEName, p.Roots())
	if err != nil {
		t.Fatal(err)
	}
	// The renewal's challenge is answered by the listener through the
	// source (nothing else listens on the port). Pebble skips the
	// challenge one renewal in a hundred, reusing the account's valid
	// authorization even with PEBBLE_AUTHZREUSE=0 (testacme): the test
	// waits for a renewal whose challenge the listener answered, and the
	// next renewal comes three seconds later.
	challengesBefore := strings.Count(logs.String(), `msg="served key authentication certificate"`)
	testutil.EventuallyReport(t, 20*time.Second, func() bool {
		leaf, err := dialLeaf(t, addr, testACMEName, p.Roots())
		return err == nil && leaf.SerialNumber.Cmp(first.SerialNumber) != 0 &&
			strings.Count(logs.String(), `msg="served key authentication certificate"`) > challengesBefore
	}, func() string {
		return "no renewed certificate with its challenge answered by the listener:\n" + logs.String()
	})
	if testing.Verbose() {
		t.Logf("log:\n%s", logs)
	}
}

func TestACMEChallengeFailureSaysWhatToCheck(t *testing.T) {
	// Pebble validates on a port where nothing listens.
	port := testutil.ClosedAddr(t).Port
	p := testacme.Start(t, port, 90*24*time.Hour)
	cfg := acmeTestConfig(p, port)
	// certmagic would bind the free port itself to answer the challenge;
	// point it elsewhere so validation really fails.
	cfg.ListenHost = "127.0.0.2"
	m := newTestManager(t, ManagerConfig{DataDir: t.TempDir(), ACME: cfg})
	_, err := m.Source(context.Background(), TLSSpec{Mode: ModeACME, Names: []string{testACMEName}})
	var ae *ACMEError
	if !errors.As(err, &ae) || ae.Unreachable {
		t.Fatalf("error = %v, want a refusal *ACMEError", err)
	}
	prefix := "no certificate for " + testACMEName + ": the ACME CA " + p.DirectoryURL() + " refused to issue ("
	suffix := fmt.Sprintf("); check that each name resolves to this host and that port %d (TLS-ALPN-01) reaches passerelle", port)
	t.Log(err)
	if msg := err.Error(); !strings.HasPrefix(msg, prefix) || !strings.HasSuffix(msg, suffix) {
		t.Fatalf("error = %s\nwant %s...%s", msg, prefix, suffix)
	}
}

func TestACMEUntrustedServerSaysSetCARoot(t *testing.T) {
	p := testacme.Start(t, 443, 90*24*time.Hour)
	cfg := acmeTestConfig(p, 443)
	cfg.CARoot = "" // Pebble's HTTPS certificate is not trusted
	m := newTestManager(t, ManagerConfig{DataDir: t.TempDir(), ACME: cfg})
	_, err := m.Source(context.Background(), TLSSpec{Mode: ModeACME, Names: []string{testACMEName}})
	want := fmt.Sprintf(`no certificate for %s: the ACME CA %s cannot be reached (Get %q: tls: failed to verify certificate: x509: certificate signed by unknown authority); its HTTPS certificate is not trusted: set acme.ca_root to the PEM file of its root`,
		testACMEName, p.DirectoryURL(), p.DirectoryURL())
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
}

func TestACMEBadCARootFile(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name, root, want string
	}{
		{"missing", missing, "acme.ca_root: open " + missing + ": no such file or directory"},
		{"not PEM", junk, "acme.ca_root " + junk + ": no PEM certificate found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestManager(t, ManagerConfig{DataDir: t.TempDir(), ACME: ACMEConfig{Agree: true, CARoot: tt.root}})
			_, err := m.Source(context.Background(), TLSSpec{Mode: ModeACME, Names: []string{testACMEName}})
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

// With no acme.email, certmagic would ask for one on the terminal during a
// synchronous obtain; passerelle must not: an account without contact is
// made instead.
func TestACMEWithoutEmailNeverPrompts(t *testing.T) {
	// certmagic remembers the first account e-mail it sees in a package
	// variable, and later configurations without one reuse it; only a fresh
	// process shows what happens with none at all.
	if os.Getenv("PASSERELLE_TEST_FRESH_PROCESS") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestACMEWithoutEmailNeverPrompts$", "-test.count=1")
		cmd.Env = append(os.Environ(), "PASSERELLE_TEST_FRESH_PROCESS=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("in a fresh process: %v\n%s", err, out)
		}
		return
	}
	l := newACMEListener(t)
	p := testacme.Start(t, l.port, 90*24*time.Hour)
	cfg := acmeTestConfig(p, l.port)
	cfg.Email = ""
	m := newTestManager(t, ManagerConfig{DataDir: t.TempDir(), ACME: cfg})
	addr := l.serve(t, m)

	// certmagic prints its prompt on os.Stdout: catch anything written.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	printed := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		printed <- string(b)
	}()
	src, err := m.Source(context.Background(), TLSSpec{Mode: ModeACME, Names: []string{testACMEName}})
	os.Stdout = stdout
	w.Close()
	if out := <-printed; out != "" {
		t.Errorf("printed on stdout: %q", out)
	}
	if err != nil {
		t.Fatal(err)
	}
	l.src.Store(src)
	if _, err := dialLeaf(t, addr, testACMEName, p.Roots()); err != nil {
		t.Fatal(err)
	}
}

// A stored certificate due for renewal is still served when the CA is up
// but renewal fails, and the log says why.
func TestACMEStoredCertificateServedWhenRenewalFails(t *testing.T) {
	l := newACMEListener(t)
	p := testacme.Start(t, l.port, 10*time.Second)
	dataDir := t.TempDir()
	acmeCfg := acmeTestConfig(p, l.port)
	// Renew in the last 90% of the life: due a second after issuance.
	mcfg := ManagerConfig{DataDir: dataDir, ACME: acmeCfg, RenewalWindowRatio: 0.9}
	m := newTestManager(t, mcfg)
	addr := l.serve(t, m)
	src, err := m.Source(context.Background(), TLSSpec{Mode: ModeACME, Names: []string{testACMEName}})
	if err != nil {
		t.Fatal(err)
	}
	l.src.Store(src)
	first, err := dialLeaf(t, addr, testACMEName, p.Roots())
	if err != nil {
		t.Fatal(err)
	}
	m.Close()

	// The listener now fails Pebble's validation; wait until the stored
	// certificate is due for renewal.
	l.refuse.Store(true)
	due := first.NotBefore.Add(first.NotAfter.Sub(first.NotBefore) / 10).Add(time.Second)
	testutil.Eventually(t, "the certificate to be due for renewal", 5*time.Second, func() bool { return time.Now().After(due) })

	logger, logs := testutil.Logger(t, slog.LevelDebug)
	mcfg.Logger = logger
	// Another account renews: Pebble reuses the first account's valid
	// authorization one time in a hundred even with PEBBLE_AUTHZREUSE=0
	// (it reuses unless a draw from 0 to 99 is above the percentage), and
	// the renewal would then succeed without the refusing listener. The
	// stored certificate is the CA's, whichever account asks.
	mcfg.ACME.Email = "renewal@passerelle.test"
	m2 := newTestManager(t, mcfg)
	src2, err := m2.Source(context.Background(), TLSSpec{Mode: ModeACME, Names: []string{testACMEName}})
	if err != nil {
		t.Fatalf("renewal failure with a valid stored certificate: %v\n%s", err, logs)
	}
	want := `level=WARN msg="ACME CA did not renew the stored certificate: serving it while renewal is retried in the background" server_name=` + testACMEName + ` acme_ca=` + p.DirectoryURL() + ` error=`
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs)
	}
	if testing.Verbose() {
		t.Logf("restart:\n%s", logs)
	}
	leaf, err := dialLeaf(t, echoServer(t, src2.GetCertificate, nil), testACMEName, p.Roots())
	if err != nil {
		t.Fatal(err)
	}
	if leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Errorf("served serial %x, want the stored %x", leaf.SerialNumber, first.SerialNumber)
	}
}

// A client that sends no server name to an ACME listener gets the first
// configured name's certificate, never another listener's certificate for
// the address it dialled (the cache is shared: here a local listener holds
// one for 127.0.0.1).
func TestACMEWithoutServerName(t *testing.T) {
	l := newACMEListener(t)
	p := testacme.Start(t, l.port, 90*24*time.Hour)
	logger, logs := testutil.Logger(t, slog.LevelInfo)
	m := newTestManager(t, ManagerConfig{DataDir: t.TempDir(), Logger: logger, ACME: acmeTestConfig(p, l.port)})
	if _, err := m.Source(context.Background(), TLSSpec{Mode: ModeLocal}); err != nil {
		t.Fatal(err)
	}
	addr := l.serve(t, m)
	second := "second." + testACMEName
	src, err := m.Source(context.Background(), TLSSpec{Mode: ModeACME, Names: []string{testACMEName, second}})
	if err != nil {
		t.Fatalf("obtain: %v\n%s", err, logs)
	}
	l.src.Store(src)
	tests := []struct{ serverName, want string }{
		{"", testACMEName}, // Go sends no server name for an IP
		{second, second},
	}
	for _, tt := range tests {
		leaf, _ := dialLeaf(t, addr, tt.serverName, p.Roots())
		if leaf == nil {
			t.Fatalf("%q: no certificate", tt.serverName)
		}
		if got := strings.Join(leaf.DNSNames, ",") + " " + fmt.Sprint(leaf.IPAddresses); got != tt.want+" []" ||
			!strings.HasPrefix(leaf.Issuer.CommonName, "Pebble Intermediate") {
			t.Errorf("server name %q: served %s from %q, want %s from Pebble", tt.serverName, got, leaf.Issuer.CommonName, tt.want)
		}
	}
}
