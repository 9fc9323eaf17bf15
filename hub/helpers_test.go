package hub

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/protocol/xmlsocket"
)

// transport is how test clients reach the hub: plain TCP or TLS, both on
// real loopback sockets.
type transport struct {
	name   string
	listen func(t testing.TB) net.Listener
	dial   func(t testing.TB, addr string) net.Conn
}

func transports() []transport {
	return []transport{plainTransport(), tlsTransport()}
}

func plainTransport() transport {
	return transport{
		name: "tcp",
		listen: func(t testing.TB) net.Listener {
			return testutil.Listen(t)
		},
		dial: func(t testing.TB, addr string) net.Conn {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	}
}

// tlsTransport serves a certificate from a CA made for the test; clients
// verify it against that CA only.
func tlsTransport() transport {
	var once sync.Once
	var srvCfg, cliCfg *tls.Config
	setup := func(t testing.TB) {
		once.Do(func() {
			root := testpki.NewRoot(t, testpki.CAOptions{})
			leaf := root.Leaf(t, testpki.LeafOptions{})
			srvCfg = &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}}
			cliCfg = &tls.Config{RootCAs: root.Pool(), ServerName: "localhost"}
		})
	}
	return transport{
		name: "tls",
		listen: func(t testing.TB) net.Listener {
			setup(t)
			return tls.NewListener(plainTransport().listen(t), srvCfg)
		},
		dial: func(t testing.TB, addr string) net.Conn {
			setup(t)
			c, err := tls.Dial("tcp", addr, cliCfg)
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	}
}

// waitTimeout bounds every wait for the hub to reach a state.
const waitTimeout = 10 * time.Second

// server is a hub behind a real listener.
type server struct {
	t    testing.TB
	hub  *Hub
	addr string
	logs *testutil.Buffer
	tr   transport
}

// startHub serves a hub on loopback. PolicyWait defaults to 50ms here so
// that listen-only clients start receiving quickly.
func startHub(t testing.TB, tr transport, cfg Config) *server {
	t.Helper()
	log, logs := testutil.Logger(t, slog.LevelInfo)
	if cfg.Logger == nil {
		cfg.Logger = log
	}
	if cfg.PolicyWait == 0 {
		cfg.PolicyWait = 50 * time.Millisecond
	}
	h := New(cfg)
	ln := tr.listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	wait := testutil.Serve(ln, func(c net.Conn) { h.ServeConn(ctx, c) })
	t.Cleanup(func() {
		ln.Close()
		h.Close()
		cancel()
		wait()
	})
	return &server{t: t, hub: h, addr: ln.Addr().String(), logs: logs, tr: tr}
}

// tclient is a test chat client.
type tclient struct {
	t    testing.TB
	conn net.Conn
	rd   *xmlsocket.Reader
}

// connect dials the hub and waits until the hub has placed the client in the
// default room (want clients there in total).
func (s *server) connect(want int) *tclient {
	s.t.Helper()
	c := s.tr.dial(s.t, s.addr)
	s.t.Cleanup(func() { c.Close() })
	s.waitRoom(DefaultRoom, want)
	return &tclient{t: s.t, conn: c, rd: xmlsocket.NewReader(c, 1<<20)}
}

// ready waits until every client's writer has started (each has passed its
// policy wait), so that frames sent from now on flow at once.
func (s *server) ready() {
	s.t.Helper()
	testutil.EventuallyReport(s.t, waitTimeout, func() bool {
		s.hub.mu.Lock()
		defer s.hub.mu.Unlock()
		for c := range s.hub.clients {
			c.mu.Lock()
			st := c.started
			c.mu.Unlock()
			if !st {
				return false
			}
		}
		return true
	}, func() string { return "writers not started" })
}

func (s *server) waitRoom(room string, n int) {
	s.t.Helper()
	testutil.EventuallyReport(s.t, waitTimeout, func() bool { return s.hub.RoomSize(room) == n },
		func() string { return "room " + room + " size " + itoa(s.hub.RoomSize(room)) + ", want " + itoa(n) })
}

// waitLog waits for a log line holding every given fragment.
func (s *server) waitLog(fragments ...string) {
	s.t.Helper()
	testutil.EventuallyReport(s.t, waitTimeout, func() bool {
		for _, line := range strings.Split(s.logs.String(), "\n") {
			ok := true
			for _, f := range fragments {
				ok = ok && strings.Contains(line, f)
			}
			if ok {
				return true
			}
		}
		return false
	}, func() string { return "no log line with " + strings.Join(fragments, " ") + " in:\n" + s.logs.String() })
}

func (c *tclient) send(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// expect reads frames and compares them with want.
func (c *tclient) expect(want ...string) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i, w := range want {
		f, err := c.rd.ReadFrame()
		if err != nil {
			c.t.Fatalf("frame %d: %v (want %q)", i, err, w)
		}
		if string(f) != w {
			c.t.Fatalf("frame %d = %q, want %q", i, f, w)
		}
	}
}

// expectNothing checks that no frame arrives within a short while. It is
// only used after a marker frame proved that everything sent before has
// been delivered, so the wait is not a synchronisation.
func (c *tclient) expectNothing() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if f, err := c.rd.ReadFrame(); err == nil {
		c.t.Fatalf("unexpected frame %q", f)
	}
	c.rd = xmlsocket.NewReader(c.conn, 1<<20) // drop the timed-out reader
}

// expectClosed reads until the hub closes the connection.
func (c *tclient) expectClosed() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, err := c.rd.ReadFrame()
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			c.t.Fatalf("connection still open")
		}
		return
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
