package hub

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

// opensslClient is "openssl s_client" connected to the relay: another TLS
// stack than Go's, standing for a non-Go XMLSocket client.
type opensslClient struct {
	stdin io.WriteCloser
	mu    sync.Mutex
	out   bytes.Buffer
	done  chan struct{}
}

func startOpenSSL(t *testing.T, addr, caFile string) *opensslClient {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl is needed for this test: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, path, "s_client", "-quiet", "-connect", addr,
		"-servername", "localhost", "-CAfile", caFile, "-verify_return_error")
	o := &opensslClient{done: make(chan struct{})}
	o.stdin, _ = cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(o.done)
		buf := make([]byte, 4096)
		for {
			n, err := stdout.Read(buf)
			o.mu.Lock()
			o.out.Write(buf[:n])
			o.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); cmd.Wait() })
	return o
}

func (o *opensslClient) output() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.out.String()
}

func TestOpenSSLClients(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	leaf := root.Leaf(t, testpki.LeafOptions{})
	caFile := root.WriteCert(t, t.TempDir(), "ca.pem")
	tr := network{
		name: "tls",
		listen: func(t testing.TB) net.Listener {
			return tls.NewListener(plainNetwork().listen(t), &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}})
		},
		dial: func(t testing.TB, addr string) net.Conn {
			c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: root.Pool(), ServerName: "localhost"})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	}
	s := startHub(t, tr, Config{})

	recv := startOpenSSL(t, s.addr, caFile)
	s.waitRoom(DefaultRoom, 1)
	send := startOpenSSL(t, s.addr, caFile)
	s.waitRoom(DefaultRoom, 2)
	g := s.connect(3)

	// Go client to openssl: byte for byte, NULs included.
	want := "hello\x00<msg>été</msg>\x00"
	g.send(want)
	testutil.EventuallyReport(t, waitTimeout, func() bool { return recv.output() == want }, func() string {
		return "openssl received " + quote(recv.output()) + ", want " + quote(want)
	})
	// openssl to Go client.
	if _, err := send.stdin.Write([]byte("from openssl\x00")); err != nil {
		t.Fatal(err)
	}
	g.expect("from openssl\x00")
	testutil.EventuallyReport(t, waitTimeout, func() bool { return recv.output() == want+"from openssl\x00" }, func() string {
		return "openssl received " + quote(recv.output())
	})
}

func quote(s string) string { return strconv.Quote(s) }
