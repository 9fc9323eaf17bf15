package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/protocol/envoie"
	"github.com/passerelle/passerelle/protocol/xmlsocket"
	"github.com/passerelle/passerelle/secure"
)

// waitTimeout bounds every wait for a command to reach a state.
const waitTimeout = 10 * time.Second

var listenLine = regexp.MustCompile(`(?m)^passerelle: (chat|envoie|echo|policy) on (\S+)`)

// served is a running in-process `passerelle serve`.
type served struct {
	out, errOut *testutil.Buffer
	addrs       map[string][]string // service -> addresses, in order
	stop        func() error
}

// startServe runs serve in-process with every default listener on an
// ephemeral loopback port, plus extra args, and waits until it listens.
func startServe(t *testing.T, dataDir string, extra ...string) *served {
	t.Helper()
	args := append([]string{"--data-dir", dataDir, "serve",
		"--chat-address", "127.0.0.1:0", "--assets-address", "127.0.0.1:0"}, extra...)
	return runServeCLI(t, args, 2+strings.Count(strings.Join(extra, " "), "-address"))
}

// runServeCLI runs passerelle with args in-process until it has printed
// listeners "<service> on <address>" lines, and stops it when the test
// ends (or earlier through stop). On failure the test shows serve's output.
func runServeCLI(t *testing.T, args []string, listeners int) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{out: &testutil.Buffer{}, errOut: &testutil.Buffer{}, addrs: map[string][]string{}}
	cmd := newRootCmd(ctx, strings.NewReader(""), s.out, s.errOut)
	cmd.SetArgs(args)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	var once sync.Once
	var runErr error
	s.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(20 * time.Second):
				t.Errorf("serve did not stop within 20s; log:\n%s", s.errOut.String())
			}
		})
		return runErr
	}
	t.Cleanup(func() { s.stop() })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve stdout:\n%s\nserve log:\n%s", s.out.String(), s.errOut.String())
		}
	})
	testutil.Eventually(t, "serve to listen", waitTimeout, func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("serve ended early: %v", err)
		default:
		}
		return len(listenLine.FindAllString(s.out.String(), -1)) >= listeners
	})
	for _, m := range listenLine.FindAllStringSubmatch(s.out.String(), -1) {
		s.addrs[m[1]] = append(s.addrs[m[1]], m[2])
	}
	return s
}

func caPool(t *testing.T, dataDir string) (*x509.CertPool, string) {
	t.Helper()
	file := filepath.Join(dataDir, "ca", "ca.pem")
	pool, err := certs.AddCAFile(nil, "local CA", file)
	if err != nil {
		t.Fatal(err)
	}
	return pool, file
}

func dialTLS(t *testing.T, addr, serverName string, pool *x509.CertPool) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := secure.Dial(ctx, addr, secure.ClientConfig{ServerName: serverName, RootCAs: pool})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readFrames reads n frames from c within a deadline.
func readFrames(t *testing.T, c net.Conn, n int) []string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	r := xmlsocket.NewReader(c, 1<<16)
	var got []string
	for len(got) < n {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("after %d frame(s) %q: %v", len(got), got, err)
		}
		got = append(got, string(f))
	}
	return got
}

// TestServeZeroConfig runs serve with no configuration: it creates the local
// CA, relays between TLS clients, a plain legacy client and a real
// openssl s_client, answers policy requests on the TLS port, and serves the
// embedded assets.
func TestServeZeroConfig(t *testing.T) {
	dataDir := t.TempDir()
	s := startServe(t, dataDir, "--plain-address", "127.0.0.1:0", "--echo-address", "127.0.0.1:0")
	pool, caFile := caPool(t, dataDir)
	if !strings.Contains(s.out.String(), "passerelle: created local CA "+caFile+"\n") {
		t.Fatalf("serve did not say where its new CA is:\n%s", s.out.String())
	}
	if fi, err := os.Stat(filepath.Join(dataDir, "ca", "ca-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key: %v, mode %v; want 0600", err, fi)
	}
	tlsChat, plainChat := s.addrs["chat"][0], s.addrs["chat"][1]

	// Three TLS clients, by both names the default certificate covers on
	// IPv4, and a plain legacy one: all in the seed's single room. Each
	// pings the relay once so that it is known to be registered.
	a := dialTLS(t, tlsChat, "localhost", pool)
	b := dialTLS(t, tlsChat, "127.0.0.1", pool)
	c := dialTLS(t, tlsChat, "", pool)
	p, err := net.Dial("tcp", plainChat)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, conn := range []net.Conn{a, b, c, p} {
		ping(t, conn)
	}

	// Byte for byte, NUL included, in the sender's order, to every other
	// client whatever its transport.
	msgs := []string{"bonjour\x00", "<msg from=\"a\">é</msg>\x00", "split across writes\x00"}
	io.WriteString(a, msgs[0]+msgs[1]+msgs[2][:5])
	io.WriteString(a, msgs[2][5:])
	for name, conn := range map[string]net.Conn{"b": b, "c": c, "plain": p} {
		if got := readFrames(t, conn, 3); strings.Join(got, "|") != strings.Join(msgs, "|") {
			t.Fatalf("%s got %q, want %q", name, got, msgs)
		}
	}
	// The plain client speaks to the TLS ones.
	io.WriteString(p, "from plain\x00")
	for name, conn := range map[string]net.Conn{"a": a, "b": b, "c": c} {
		if got := readFrames(t, conn, 1); got[0] != "from plain\x00" {
			t.Fatalf("%s got %q", name, got)
		}
	}

	// A real third-party TLS client, verifying the chain against the CA file
	// serve printed, talks to the others and hears them.
	t.Run("openssl", func(t *testing.T) {
		if _, err := exec.LookPath("openssl"); err != nil {
			t.Fatal("openssl is needed (.ci/run installs it)")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "openssl", "s_client", "-quiet", "-verify_return_error",
			"-connect", tlsChat, "-servername", "localhost", "-verify_hostname", "localhost", "-CAfile", caFile)
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		defer cancel()
		// openssl writes nothing until it has a connection; its ping's pong
		// proves the handshake verified and the relay registered it.
		io.WriteString(stdin, "<passerelle:ping/>\x00")
		br := bufio.NewReader(stdout)
		if pong, err := br.ReadString(0); err != nil || pong != "<passerelle:pong/>\x00" {
			t.Fatalf("openssl read %q, %v", pong, err)
		}
		io.WriteString(stdin, "hello from openssl\x00")
		for name, conn := range map[string]net.Conn{"a": a, "plain": p} {
			if got := readFrames(t, conn, 1); got[0] != "hello from openssl\x00" {
				t.Fatalf("%s got %q", name, got)
			}
		}
		io.WriteString(b, "to openssl\x00")
		if got, err := br.ReadString(0); err != nil || got != "to openssl\x00" {
			t.Fatalf("openssl read %q, %v", got, err)
		}
		readFrames(t, a, 1) // a hears b too
		readFrames(t, c, 2)
		readFrames(t, p, 1)
	})

	t.Run("policy on the TLS port", func(t *testing.T) {
		raw, err := net.Dial("tcp", tlsChat)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		io.WriteString(raw, "<policy-file-request/>\x00")
		raw.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(raw)
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(tlsChat)
		if !bytes.HasSuffix(got, []byte("</cross-domain-policy>\x00")) || !bytes.Contains(got, []byte(port)) {
			t.Fatalf("policy answer %q does not end the policy with a NUL or name port %s", got, port)
		}
	})

	t.Run("plain bytes on the TLS port", func(t *testing.T) {
		raw, err := net.Dial("tcp", tlsChat)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		io.WriteString(raw, "hello\x00")
		raw.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, _ := io.ReadAll(raw)
		if want := "passerelle: this port speaks TLS; connect with a TLS client (SecureSocket, openssl s_client)\n"; string(got) != want {
			t.Fatalf("plain bytes on the TLS port got %q, want the hint %q", got, want)
		}
		// Nobody in the room heard them.
		a.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var one [1]byte
		if n, _ := a.Read(one[:]); n != 0 {
			t.Fatalf("a TLS client received %q after plain bytes were sent to the TLS port", one[:n])
		}
		a.SetReadDeadline(time.Time{})
	})

	t.Run("echo", func(t *testing.T) {
		e := dialTLS(t, s.addrs["echo"][0], "localhost", pool)
		e.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		n, err := io.ReadAtLeast(e, buf, len("Connected."))
		if err != nil || string(buf[:n]) != "Connected." {
			t.Fatalf("echo greeting %q, %v", buf[:n], err)
		}
		io.WriteString(e, "ping")
		n, err = io.ReadAtLeast(e, buf, len("Echo -- ping"))
		if err != nil || string(buf[:n]) != "Echo -- ping" {
			t.Fatalf("echo answer %q, %v", buf[:n], err)
		}
	})

	t.Run("assets", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "bienvenue.txt")
		if _, stderr, err := runCLI(t, "--data-dir", dataDir, "get", s.addrs["envoie"][0], "bienvenue.txt", "-o", out); err != nil {
			t.Fatalf("get: %v\n%s", err, stderr)
		}
		f, err := envoie.Samples().Open("bienvenue.txt")
		if err != nil {
			t.Fatal(err)
		}
		want, _ := io.ReadAll(f)
		f.Close()
		if got, _ := os.ReadFile(out); len(want) == 0 || !bytes.Equal(got, want) {
			t.Fatalf("downloaded %d bytes, want the %d of the sample", len(got), len(want))
		}
	})

	// A chat client's close line says which listener (as configured) and
	// service it came through, though every chat listener shares one relay.
	p.Close()
	testutil.Eventually(t, "the plain client's close line", waitTimeout, func() bool {
		return strings.Contains(s.errOut.String(), `msg="chat client closed" listener=127.0.0.1:0 service=chat remote_addr=`+p.LocalAddr().String()+` reason=client_closed`)
	})

	if err := s.stop(); err != nil {
		t.Fatalf("serve ended with %v", err)
	}
	// Shutdown closes every client.
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.Read(make([]byte, 1)); err == nil {
		t.Fatal("a client was still connected after shutdown")
	}
}

// ping sends a control ping and waits for its pong: the relay has
// registered the client.
func ping(t *testing.T, c net.Conn) {
	t.Helper()
	io.WriteString(c, "<passerelle:ping/>\x00")
	if got := readFrames(t, c, 1); got[0] != "<passerelle:pong/>\x00" {
		t.Fatalf("ping answered %q", got)
	}
}

// TestServeRestartReusesCA starts serve twice on one data folder: the second
// run reuses the CA and says so, and clients trusting the first CA still
// connect.
func TestServeRestartReusesCA(t *testing.T) {
	dataDir := t.TempDir()
	s1 := startServe(t, dataDir)
	_, caFile := caPool(t, dataDir)
	before, _ := os.ReadFile(caFile)
	if err := s1.stop(); err != nil {
		t.Fatal(err)
	}
	s2 := startServe(t, dataDir)
	if !strings.Contains(s2.out.String(), "passerelle: using local CA "+caFile+"\n") {
		t.Fatalf("second start did not reuse the CA:\n%s", s2.out.String())
	}
	after, _ := os.ReadFile(caFile)
	if !bytes.Equal(before, after) {
		t.Fatal("the CA file changed across a restart")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(before)
	dialTLS(t, s2.addrs["chat"][0], "localhost", pool)
}
