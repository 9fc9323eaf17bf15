package secure

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/peekconn"
	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

// verdictHandler tells the client what the server thought of its
// certificate, the testbed's way, then closes.
func verdictHandler(_ context.Context, c *Conn) {
	v := c.PeerVerdict()
	fmt.Fprintf(c, "status %s\nreason %s\n", v.Status, v.Reason)
}

type clientCase struct {
	name   string
	build  func(t *testing.T, w *world) (*testpki.Leaf, string)
	names  []string // ServerConfig.ClientNames
	want   Status
	ossl   int // openssl verify -purpose sslclient code; -1 to skip
	osslX  func(w *world) []string
	noCert bool
}

func clientCases() []clientCase {
	day := 24 * time.Hour
	client := testpki.LeafOptions{Client: true, Emails: []string{"alice@example.org"}}
	return []clientCase{
		{name: "no certificate", noCert: true, want: StatusUnknown, ossl: -1,
			build: func(t *testing.T, w *world) (*testpki.Leaf, string) { return nil, "" }},
		{name: "trusted", want: StatusTrusted, ossl: 0,
			build: func(t *testing.T, w *world) (*testpki.Leaf, string) {
				return w.root.Intermediate(t, testpki.CAOptions{}).Leaf(t, client), "certificate chain verified for client authentication"
			}},
		{name: "expired", want: StatusExpired, ossl: 10,
			build: func(t *testing.T, w *world) (*testpki.Leaf, string) {
				o := client
				o.NotBefore, o.NotAfter = time.Now().Add(-2*day), time.Now().Add(-day)
				l := w.root.Leaf(t, o)
				return l, "certificate expired on " + l.Cert.NotAfter.UTC().Format(time.RFC3339)
			}},
		{name: "not yet valid", want: StatusNotYetValid, ossl: 9,
			build: func(t *testing.T, w *world) (*testpki.Leaf, string) {
				o := client
				o.NotBefore, o.NotAfter = time.Now().Add(day), time.Now().Add(2*day)
				l := w.root.Leaf(t, o)
				return l, "certificate is not valid before " + l.Cert.NotBefore.UTC().Format(time.RFC3339)
			}},
		{name: "self-signed", want: StatusUntrustedSigners, ossl: 18,
			build: func(t *testing.T, w *world) (*testpki.Leaf, string) {
				return selfSigned(t, true), `self-signed certificate "self-signed localhost" is not trusted`
			}},
		{name: "unknown issuer", want: StatusUntrustedSigners, ossl: 20,
			build: func(t *testing.T, w *world) (*testpki.Leaf, string) {
				return w.other.Leaf(t, client), `issuer "CN=someone else,O=passerelle tests" of "passerelle test leaf" is not a trusted root and was not sent`
			}},
		{name: "non-CA intermediate", want: StatusInvalidChain, ossl: 79, // 79: invalid CA certificate
			build: func(t *testing.T, w *world) (*testpki.Leaf, string) {
				inter := w.root.Intermediate(t, testpki.CAOptions{CommonName: "not a CA", NotCA: true})
				return inter.Leaf(t, client), `"not a CA" signed "passerelle test leaf" but is not a CA certificate`
			}},
		{name: "server certificate as client", want: StatusInvalid, ossl: 26,
			build: func(t *testing.T, w *world) (*testpki.Leaf, string) {
				return w.root.Leaf(t, testpki.LeafOptions{}), "certificate is not for client authentication (extended key usage)"
			}},
		{name: "not an expected name", names: []string{"bob@example.org", "spiffe://example.org/bob"}, want: StatusPrincipalMismatch, ossl: 63,
			osslX: func(*world) []string { return []string{"-verify_email", "bob@example.org"} },
			build: func(t *testing.T, w *world) (*testpki.Leaf, string) {
				return w.root.Leaf(t, client), "certificate is valid for alice@example.org, not for any of bob@example.org, spiffe://example.org/bob"
			}},
		{name: "expected name", names: []string{"bob@example.org", "alice@example.org"}, want: StatusTrusted, ossl: 0,
			build: func(t *testing.T, w *world) (*testpki.Leaf, string) {
				return w.root.Leaf(t, client), "certificate chain verified for client authentication"
			}},
		{name: "revoked", want: StatusRevoked, ossl: 23,
			osslX: func(w *world) []string { return []string{"-crl_check", "-CRLfile", w.crlPEMFile()} },
			build: func(t *testing.T, w *world) (*testpki.Leaf, string) {
				o := client
				o.CRLDistributionPoints = []string{w.crlURL}
				l := w.root.Leaf(t, o)
				w.revoke(t, l)
				w.writeCRLPEM(t)
				return l, revokedReason(w, l, "crl "+w.crlURL)
			}},
	}
}

// TestClientCertificateStatuses has the server judge client certificates
// (ClientAuthRequest: everyone gets in and is told its status), presented by
// the Go client and by openssl s_client, and compares with openssl verify.
func TestClientCertificateStatuses(t *testing.T) {
	w := newWorld(t)
	for _, tc := range clientCases() {
		t.Run(tc.name, func(t *testing.T) {
			leaf, reason := tc.build(t, w)
			ts := startServer(t, ServerConfig{
				GetCertificate: staticCert(w.root.Leaf(t, testpki.LeafOptions{}).TLS()),
				ClientAuth:     ClientAuthRequest,
				ClientCAs:      w.root.Pool(),
				ClientNames:    tc.names,
			}, verdictHandler)
			cfg := ClientConfig{ServerName: "localhost", RootCAs: w.root.Pool()}
			if leaf != nil {
				cfg.Certificates = []tls.Certificate{leaf.TLS()}
			}
			c, err := Dial(dialCtx(t), ts.addr, cfg)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			got, _ := io.ReadAll(c)
			c.Close()
			want := fmt.Sprintf("status %s\nreason %s\n", tc.want, reason)
			if string(got) != want {
				t.Errorf("server said\n%q\nwant\n%q", got, want)
			}
			if leaf == nil {
				return
			}

			// The same certificate presented by openssl s_client.
			dir := t.TempDir()
			certFile, keyFile := writeLeafOnly(t, dir, leaf)
			args := []string{"s_client", "-connect", ts.addr, "-CAfile", w.rootFile, "-cert", certFile, "-key", keyFile, "-ign_eof", "-quiet"}
			if len(leaf.Chain) > 0 {
				args = append(args, "-cert_chain", writeChain(t, dir, leaf))
			}
			contains(t, runOpenSSL(t, nil, args...), "status "+string(tc.want)+"\n")

			if tc.ossl >= 0 {
				var extra []string
				if tc.osslX != nil {
					extra = tc.osslX(w)
				}
				if code := opensslVerifyCode(t, dir, leaf, w.rootFile, "sslclient", extra...); code != tc.ossl {
					t.Errorf("openssl verify code %d, want %d", code, tc.ossl)
				}
			}
		})
	}
}

func (w *world) crlPEMFile() string { return filepath.Join(w.dir, "root-crl.pem") }

func (w *world) writeCRLPEM(t testing.TB) {
	t.Helper()
	out := runOpenSSL(t, nil, "crl", "-inform", "DER", "-in", w.crlFile(t), "-out", w.crlPEMFile())
	if _, err := os.Stat(w.crlPEMFile()); err != nil {
		t.Fatalf("openssl crl: %s", out)
	}
}

func writeLeafOnly(t testing.TB, dir string, l *testpki.Leaf) (string, string) {
	t.Helper()
	cf, kf := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	writeTestFile(t, cf, testpki.CertPEM(l.Cert))
	writeTestFile(t, kf, l.KeyPEM(t))
	return cf, kf
}

func writeChain(t testing.TB, dir string, l *testpki.Leaf) string {
	t.Helper()
	var b []byte
	for _, c := range l.Chain {
		b = append(b, testpki.CertPEM(c)...)
	}
	p := filepath.Join(dir, "chain.pem")
	writeTestFile(t, p, b)
	return p
}

// TestRequireRefuses checks that ClientAuthRequire refuses a client without
// a trusted certificate during the handshake, with a log line saying why.
func TestRequireRefuses(t *testing.T) {
	w := newWorld(t)
	expired := w.root.Leaf(t, testpki.LeafOptions{Client: true, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	good := w.root.Leaf(t, testpki.LeafOptions{Client: true})
	tests := []struct {
		name      string
		cert      *testpki.Leaf
		authorize func(Verdict) error
		log       string // "" when the client is let in
	}{
		{"no certificate", nil, nil, `level=WARN msg="client refused" remote_addr=%s status=unknown reason="no client certificate presented"`},
		{"expired", expired, nil, `level=WARN msg="client refused" remote_addr=%s status=expired reason="certificate expired on ` + expired.Cert.NotAfter.UTC().Format(time.RFC3339) + `"`},
		{"trusted", good, nil, ""},
		{"trusted but not authorized", good, func(v Verdict) error { return errors.New("not on the allow-list") }, `level=WARN msg="client refused" remote_addr=%s status=trusted reason="not authorized: not on the allow-list"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, ServerConfig{
				GetCertificate: staticCert(w.root.Leaf(t, testpki.LeafOptions{}).TLS()),
				ClientAuth:     ClientAuthRequire,
				ClientCAs:      w.root.Pool(),
				Authorize:      tt.authorize,
			}, verdictHandler)
			cfg := ClientConfig{ServerName: "localhost", RootCAs: w.root.Pool()}
			if tt.cert != nil {
				cfg.Certificates = []tls.Certificate{tt.cert.TLS()}
			}
			c, err := Dial(dialCtx(t), ts.addr, cfg)
			var got []byte
			if err == nil {
				// TLS 1.3: the client finishes before the server has read its
				// certificate; the refusal arrives as an alert on first read.
				got, err = io.ReadAll(c)
				c.Close()
			}
			if tt.log == "" {
				if err != nil || !strings.HasPrefix(string(got), "status trusted\n") {
					t.Fatalf("trusted client: %q, %v", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "remote error: tls: bad certificate") {
				t.Errorf("refused client got %q, err %v; want a bad certificate alert", got, err)
			}
			testutil.Eventually(t, "refusal log line", 5*time.Second, func() bool { return strings.Contains(ts.logs.String(), `msg="client refused"`) })
			line := logLine(ts.logs.String(), `msg="client refused"`)
			if !matchesLog(line, tt.log) {
				t.Errorf("log line\n got %s\nwant %s", line, tt.log)
			}
		})
	}
}

// logLine returns the first log line containing s, without its time= field.
func logLine(logs, s string) string {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, s) {
			if i := strings.Index(l, " level="); i >= 0 {
				l = l[i+1:]
			}
			return l
		}
	}
	return ""
}

// matchesLog compares a log line with a format whose %s is the remote
// address (any 127.0.0.1 port).
func matchesLog(line, format string) bool {
	i := strings.Index(format, "%s")
	if i < 0 {
		return line == format
	}
	if !strings.HasPrefix(line, format[:i]) || !strings.HasSuffix(line, format[i+2:]) {
		return false
	}
	addr := line[i : len(line)-len(format[i+2:])]
	return strings.HasPrefix(addr, "127.0.0.1:")
}

func TestHandshakeTimeoutDropsSilentClient(t *testing.T) {
	w := newWorld(t)
	ts := startServer(t, ServerConfig{
		GetCertificate:   staticCert(w.root.Leaf(t, testpki.LeafOptions{}).TLS()),
		HandshakeTimeout: 100 * time.Millisecond,
	}, echoHandler)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err != io.EOF {
		t.Fatalf("silent client read %d, %v; want EOF from the server", n, err)
	}
	testutil.Eventually(t, "timeout log line", 5*time.Second, func() bool { return strings.Contains(ts.logs.String(), "handshake timeout") })
	line := logLine(ts.logs.String(), "handshake timeout")
	if !matchesLog(line, `level=INFO msg="client sent nothing before the handshake timeout; closing" remote_addr=%s timeout=100ms`) {
		t.Errorf("log line %s", line)
	}
}

// TestStalledHandshakeTimesOut sends the first byte of a ClientHello and
// stops: the deadline covers the whole handshake, not only the first byte.
func TestStalledHandshakeTimesOut(t *testing.T) {
	w := newWorld(t)
	ts := startServer(t, ServerConfig{
		GetCertificate:   staticCert(w.root.Leaf(t, testpki.LeafOptions{}).TLS()),
		HandshakeTimeout: 100 * time.Millisecond,
	}, echoHandler)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{0x16, 0x03})
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("read: %v; want the server to close", err)
	}
	testutil.Eventually(t, "timeout log line", 5*time.Second, func() bool { return strings.Contains(ts.logs.String(), "tls handshake timed out") })
}

func TestPlainTextOnTLSPort(t *testing.T) {
	w := newWorld(t)
	ts := startServer(t, ServerConfig{GetCertificate: staticCert(w.root.Leaf(t, testpki.LeafOptions{}).TLS())}, echoHandler)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "hello\n")
	got, _ := io.ReadAll(c)
	if string(got) != plainHint {
		t.Errorf("plain client got %q, want %q", got, plainHint)
	}
	testutil.Eventually(t, "plain text log line", 5*time.Second, func() bool { return strings.Contains(ts.logs.String(), "plain text") })
	if line := logLine(ts.logs.String(), "plain text"); !matchesLog(line, `level=INFO msg="client sent plain text to a TLS port; closing" remote_addr=%s first_byte=0x68`) {
		t.Errorf("log line %s", line)
	}
}

func TestPrefaceGetsTheWholeRequest(t *testing.T) {
	w := newWorld(t)
	const req = "<policy-file-request/>\x00"
	ts := startServer(t, ServerConfig{
		GetCertificate: staticCert(w.root.Leaf(t, testpki.LeafOptions{}).TLS()),
		Preface: func(_ context.Context, c net.Conn) (net.Conn, bool) {
			r := bufio.NewReader(c)
			got, err := r.ReadString(0)
			if err == nil && got == req {
				io.WriteString(c, "<cross-domain-policy/>\x00")
			}
			return nil, false
		},
	}, echoHandler)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, req)
	got, _ := io.ReadAll(c)
	if string(got) != "<cross-domain-policy/>\x00" {
		t.Errorf("got %q", got)
	}
	// TLS still works on the same listener.
	tc, err := Dial(dialCtx(t), ts.addr, ClientConfig{RootCAs: w.root.Pool()})
	if err != nil {
		t.Fatalf("Dial after fallback: %v", err)
	}
	tc.Close()
}

func TestPlainMode(t *testing.T) {
	ts := startServer(t, ServerConfig{Plain: true}, func(ctx context.Context, c *Conn) {
		if c.TLS() != nil {
			io.WriteString(c, "unexpected TLS state\n")
		}
		echoHandler(ctx, c)
	})
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if line, _ := r.ReadString('\n'); line != "status unknown\n" {
		t.Fatalf("greeting %q", line)
	}
	io.WriteString(c, "ping")
	buf := make([]byte, len("Echo -- ping"))
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "Echo -- ping" {
		t.Errorf("echo %q, %v", buf, err)
	}
}

func TestServeRejectsMissingCertificate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = (&Server{Handler: echoHandler}).Serve(context.Background(), ln)
	if err == nil || err.Error() != "secure: ServerConfig.GetCertificate is nil and Plain is not set" {
		t.Errorf("Serve: %v", err)
	}
}

// TestMaxConnsMakesClientsWait: with one slot, a second client is not
// served until the first leaves, and is served then.
func TestMaxConnsMakesClientsWait(t *testing.T) {
	var active, peak atomic.Int32
	release := make(chan struct{})
	ts := startServer(t, ServerConfig{Plain: true, MaxConns: 1}, func(ctx context.Context, c *Conn) {
		n := active.Add(1)
		defer active.Add(-1)
		if n > peak.Load() {
			peak.Store(n)
		}
		io.WriteString(c, "hi\n")
		select {
		case <-release:
		case <-ctx.Done():
		}
	})
	r1 := bufio.NewReader(dialFrom(t, "127.0.0.1", ts.addr))
	if l, _ := r1.ReadString('\n'); l != "hi\n" {
		t.Fatalf("first client greeting %q", l)
	}
	servedOnceFree(t, ts.addr, func() { close(release) })
	if p := peak.Load(); p != 1 {
		t.Errorf("peak concurrent handlers %d, want 1", p)
	}
}

// servedOnceFree dials a second client while the server's only slot is
// taken, checks that it is not served meanwhile, calls free, and checks
// that it is served then (greeted with "hi").
func servedOnceFree(t *testing.T, addr string, free func()) {
	t.Helper()
	r := bufio.NewReader(dialFrom(t, "127.0.0.1", addr))
	got := make(chan string, 1)
	go func() {
		l, _ := r.ReadString('\n')
		got <- l
	}()
	select {
	case l := <-got:
		t.Fatalf("second client served while the only slot was taken: %q", l)
	case <-time.After(200 * time.Millisecond):
	}
	free()
	select {
	case l := <-got:
		if l != "hi\n" {
			t.Errorf("second client greeting %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second client never served once the slot was free")
	}
}

// TestDetach: a handler that detaches its connection returns while the
// connection stays open and keeps its slot; end closes it and gives the
// slot back; a Conn no Server made cannot be detached.
func TestDetach(t *testing.T) {
	type detached struct {
		c   *Conn
		end func()
	}
	handed := make(chan detached, 2)
	returned := make(chan struct{}, 2)
	ts := startServer(t, ServerConfig{Plain: true, MaxConns: 1}, func(ctx context.Context, c *Conn) {
		defer func() { returned <- struct{}{} }()
		io.WriteString(c, "hi\n")
		handed <- detached{c, c.Detach()}
	})
	r1 := bufio.NewReader(dialFrom(t, "127.0.0.1", ts.addr))
	if l, _ := r1.ReadString('\n'); l != "hi\n" {
		t.Fatalf("first client greeting %q", l)
	}
	d := <-handed
	if d.end == nil {
		t.Fatal("Detach returned nil on a Server's Conn")
	}
	<-returned
	// The slot stays taken (servedOnceFree waits 200 ms for the second
	// client not to be served), and the connection open, until end.
	servedOnceFree(t, ts.addr, func() {
		if _, err := io.WriteString(d.c, "still open\n"); err != nil {
			t.Fatalf("write after the handler returned: %v", err)
		}
		if l, _ := r1.ReadString('\n'); l != "still open\n" {
			t.Fatalf("after the handler returned the client read %q", l)
		}
		d.end()
		d.end() // later calls do nothing
		if _, err := r1.ReadString('\n'); err != io.EOF {
			t.Fatalf("first client after end: %v, want EOF", err)
		}
	})
	(<-handed).end()

	if end := (&Conn{}).Detach(); end != nil {
		t.Fatal("Detach on a Conn no Server made returned an end")
	}
}

// TestShutdownWaitsForHandlers: Serve returns only once every handler has
// returned; a handler deaf to ctx has its connection closed after the grace.
func TestShutdownWaitsForHandlers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var politeDone, deafDone atomic.Bool
	started := make(chan struct{}, 2)
	srv := &Server{
		Config: ServerConfig{Plain: true, ShutdownGrace: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)},
		Handler: func(ctx context.Context, c *Conn) {
			started <- struct{}{}
			buf := make([]byte, 1)
			c.Read(buf) // the first byte says which kind of handler to be
			if buf[0] == 'p' {
				<-ctx.Done()
				politeDone.Store(true)
				return
			}
			c.Read(buf) // ignores ctx; returns when the server closes the conn
			deafDone.Store(true)
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	for _, kind := range []string{"p", "d"} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, kind)
		<-started
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if !politeDone.Load() || !deafDone.Load() {
		t.Errorf("Serve returned before its handlers (polite %v, deaf %v)", politeDone.Load(), deafDone.Load())
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener still open after Serve returned")
	}
}

// flakyListener fails Accept a few times with a temporary error.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
}

type tempErr struct{}

func (tempErr) Error() string   { return "too many open files" }
func (tempErr) Timeout() bool   { return false }
func (tempErr) Temporary() bool { return true }

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, tempErr{}
	}
	return l.Listener.Accept()
}

func TestAcceptErrorsBackOff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: ln}
	fl.fails.Store(3)
	logs := &testutil.Buffer{}
	srv := &Server{Config: ServerConfig{Plain: true, Logger: slog.New(slog.NewTextHandler(logs, nil))}, Handler: echoHandler}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, fl) }()
	defer func() { cancel(); <-done }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if l, _ := bufio.NewReader(c).ReadString('\n'); l != "status unknown\n" {
		t.Fatalf("greeting %q", l)
	}
	for _, d := range []string{"5ms", "10ms", "20ms"} {
		contains(t, logs.String(), `msg="accept failed; backing off" listen_addr=`+ln.Addr().String()+` error="too many open files" retry_in=`+d)
	}
}

// TestServerFollowsClientAIAOnlyWhenTold: a client certificate whose issuer
// was not sent is untrustedSigners unless FetchClientIssuers is set.
func TestServerFollowsClientAIAOnlyWhenTold(t *testing.T) {
	w := newWorld(t)
	inter := w.root.Intermediate(t, testpki.CAOptions{CommonName: "client issuing CA"})
	url := w.publish(inter.Cert, "client-ca.der")
	leaf := inter.Leaf(t, testpki.LeafOptions{Client: true, Emails: []string{"a@example.org"}, IssuingCertificateURL: []string{url}})
	lone := leaf.TLS()
	lone.Certificate = lone.Certificate[:1]
	for _, tt := range []struct {
		fetch bool
		want  string
	}{
		{false, `status untrustedSigners` + "\n" + `reason issuer "CN=client issuing CA,O=passerelle tests" of "passerelle test leaf" is not a trusted root and was not sent` + "\n"},
		{true, "status invalidChain\nreason the peer did not send the intermediate \"client issuing CA\" (found at " + url + ")\n"},
	} {
		ts := startServer(t, ServerConfig{
			GetCertificate:     staticCert(w.root.Leaf(t, testpki.LeafOptions{}).TLS()),
			ClientAuth:         ClientAuthRequest,
			ClientCAs:          w.root.Pool(),
			FetchClientIssuers: tt.fetch,
		}, verdictHandler)
		c, err := Dial(dialCtx(t), ts.addr, ClientConfig{ServerName: "localhost", RootCAs: w.root.Pool(), Certificates: []tls.Certificate{lone}})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(c)
		c.Close()
		if string(got) != tt.want {
			t.Errorf("FetchClientIssuers %v: server said %q, want %q", tt.fetch, got, tt.want)
		}
	}
}

// brokenListener fails Accept for good.
type brokenListener struct{ net.Listener }

func (brokenListener) Accept() (net.Conn, error) { return nil, errors.New("listener is broken") }

func TestServeReturnsOnPermanentAcceptError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = (&Server{Config: ServerConfig{Plain: true}, Handler: echoHandler}).Serve(context.Background(), brokenListener{ln})
	if want := "accept on " + ln.Addr().String() + ": listener is broken"; err == nil || err.Error() != want {
		t.Errorf("Serve: %v, want %q", err, want)
	}
}

// TestALPNMismatchFallsBack checks that a listener offering only
// "acme-tls/1" (an ACME listener) still serves clients that offer other
// protocols, without ALPN, and still negotiates acme-tls/1 when asked.
func TestALPNMismatchFallsBack(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	leaf := root.Leaf(t, testpki.LeafOptions{})
	ts := startServer(t, ServerConfig{GetCertificate: staticCert(leaf.TLS()), NextProtos: []string{"acme-tls/1"}}, nil)
	tests := []struct {
		offer []string
		want  string
	}{
		{nil, ""},
		{[]string{"xmpp-client", "h2"}, ""},
		{[]string{"acme-tls/1"}, "acme-tls/1"},
	}
	for _, tt := range tests {
		c, err := Dial(dialCtx(t), ts.addr, ClientConfig{ServerName: "localhost", RootCAs: root.Pool(), NextProtos: tt.offer})
		if err != nil {
			t.Fatalf("offering %q: %v", tt.offer, err)
		}
		if got := c.ConnectionState().NegotiatedProtocol; got != tt.want {
			t.Errorf("offering %q negotiated %q, want %q", tt.offer, got, tt.want)
		}
		c.Close()
	}
}

// TestConnCloseWrite: a handler on a plain listener half-closes through
// the Conn it is given, with or without a Preface's read-ahead under it:
// the client sees the end while the handler still reads. Over TLS the
// Conn offers no half-close.
func TestConnCloseWrite(t *testing.T) {
	halfClose := func(_ context.Context, c *Conn) {
		io.WriteString(c, "bye\n")
		if err := c.CloseWrite(); err != nil {
			io.WriteString(c, "half-close: "+err.Error()+"\n")
			return
		}
		io.Copy(io.Discard, c) // until the client, having seen the end, hangs up
	}
	replay := func(_ context.Context, c net.Conn) (net.Conn, bool) { return peekconn.New(c), true }
	for _, tc := range []struct {
		name    string
		preface func(context.Context, net.Conn) (net.Conn, bool)
	}{
		{"raw", nil},
		{"after a preface", replay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, ServerConfig{Plain: true, Preface: tc.preface}, halfClose)
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(c)
			if string(got) != "bye\n" || err != nil {
				t.Errorf("got %q, %v; want %q and the end", got, err, "bye\n")
			}
		})
	}
	t.Run("tls", func(t *testing.T) {
		root := testpki.NewRoot(t, testpki.CAOptions{})
		got := make(chan error, 1)
		ts := startServer(t, ServerConfig{GetCertificate: staticCert(root.Leaf(t, testpki.LeafOptions{}).TLS())},
			func(_ context.Context, c *Conn) { got <- c.CloseWrite() })
		c, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: root.Pool(), ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := <-got; !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("CloseWrite over TLS: %v, want ErrUnsupported", err)
		}
	})
}
