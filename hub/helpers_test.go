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

// network is how test clients reach the hub: plain TCP or TLS, both on
// real loopback sockets.
type network struct {
	name   string
	listen func(t testing.TB) net.Listener
	dial   func(t testing.TB, addr string) net.Conn
}

func networks() []network {
	return []network{plainNetwork(), tlsNetwork()}
}

func plainNetwork() network {
	return network{
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
func tlsNetwork() network {
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
	return network{
		name: "tls",
		listen: func(t testing.TB) net.Listener {
			setup(t)
			return tls.NewListener(plainNetwork().listen(t), srvCfg)
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
	tr   network
	obs  *closeCounter
}

// closeCounter counts the clients closed for each reason (the log line is
// rate-limited, the Observer is told of every one), passing everything on
// to the Observer the test gave, if any.
type closeCounter struct {
	next Observer
	mu   sync.Mutex
	n    map[CloseReason]int
}

func (c *closeCounter) Relayed(bytes, receivers int) {
	if c.next != nil {
		c.next.Relayed(bytes, receivers)
	}
}

func (c *closeCounter) Closed(reason CloseReason) {
	c.mu.Lock()
	c.n[reason]++
	c.mu.Unlock()
	if c.next != nil {
		c.next.Closed(reason)
	}
}

// startHub serves a hub on loopback, logging at level info.
func startHub(t testing.TB, tr network, cfg Config) *server {
	t.Helper()
	return startHubLevel(t, tr, cfg, slog.LevelInfo)
}

func startHubLevel(t testing.TB, tr network, cfg Config, level slog.Level) *server {
	t.Helper()
	log, logs := testutil.Logger(t, level)
	if cfg.Logger == nil {
		cfg.Logger = log
	}
	obs := &closeCounter{next: cfg.Observer, n: make(map[CloseReason]int)}
	cfg.Observer = obs
	h := New(cfg)
	ln := tr.listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	wait := testutil.Serve(ln, func(c net.Conn) { serveHandshaken(ctx, h, c) })
	t.Cleanup(func() {
		ln.Close()
		h.Close()
		cancel()
		wait()
	})
	return &server{t: t, hub: h, addr: ln.Addr().String(), logs: logs, tr: tr, obs: obs}
}

// serveHandshaken hands c to the hub as the server layer does: a TLS
// connection only once its handshake is done, and able to abort.
func serveHandshaken(ctx context.Context, h *Hub, c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		hctx, cancel := context.WithTimeout(ctx, waitTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			c.Close()
			return
		}
		c = abortableTLS{tc}
	}
	h.ServeConn(ctx, c)
}

// abortableTLS is a server-side TLS connection whose Abort closes the TCP
// socket under the TLS layer, as secure.Conn's does: no close_notify alert
// after half a record.
type abortableTLS struct{ *tls.Conn }

func (c abortableTLS) Abort() error { return c.NetConn().Close() }

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

func (s *server) waitRoom(room string, n int) {
	s.t.Helper()
	testutil.EventuallyReport(s.t, waitTimeout, func() bool { return roomSize(s.hub, room) == n },
		func() string { return "room " + room + " size " + itoa(roomSize(s.hub, room)) + ", want " + itoa(n) })
}

// roomSize returns the number of clients in the named room.
func roomSize(h *Hub, name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[name]
	if r == nil {
		return 0
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.members)
}

// clientCount returns the number of connected clients.
func clientCount(h *Hub) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// roomCount returns the number of rooms the hub knows.
func roomCount(h *Hub) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.rooms)
}

// closed counts the clients closed for reason.
func (s *server) closed(reason CloseReason) int {
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	return s.obs.n[reason]
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
