package hub

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/peekconn"
	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/secure"
)

// parkAfter is the linger of the parking tests: short, so that clients
// park and wake many times in one test.
const parkAfter = 20 * time.Millisecond

// parkServer is a hub behind secure.Server, its connections handed over
// through a peekconn.Conn as the listener's door does: the connections a
// client can be parked on.
type parkServer struct {
	*server
	cancel context.CancelFunc
	done   chan struct{} // closed when secure.Server.Serve has returned
}

func startParkHub(t *testing.T, plain bool, cfg Config) *parkServer {
	t.Helper()
	log, logs := testutil.Logger(t, 0)
	cfg.Logger = log
	if cfg.ParkAfter == 0 {
		cfg.ParkAfter = parkAfter
	}
	obs := &closeCounter{n: make(map[CloseReason]int)}
	cfg.Observer = obs
	h := New(cfg)
	tr := plainNetwork()
	srvCfg := secure.ServerConfig{Plain: plain, MaxConns: 100, MaxConnsPerAddress: 100}
	if !plain {
		root := testpki.NewRoot(t, testpki.CAOptions{})
		leaf := root.Leaf(t, testpki.LeafOptions{}).TLS()
		srvCfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &leaf, nil }
		cli := &tls.Config{RootCAs: root.Pool(), ServerName: "localhost"}
		tr = network{name: "tls", dial: func(t testing.TB, addr string) net.Conn {
			c, err := tls.Dial("tcp", addr, cli)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}}
	}
	srv := &secure.Server{Config: srvCfg, Handler: func(ctx context.Context, c *secure.Conn) {
		h.AdmitConn(ctx, peekconn.New(c)).Serve()
	}}
	ln := testutil.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		h.Close()
	})
	s := &server{t: t, hub: h, addr: ln.Addr().String(), logs: logs, tr: tr, obs: obs}
	return &parkServer{server: s, cancel: cancel, done: done}
}

// waitParked waits until n clients are parked.
func (s *parkServer) waitParked(n int) {
	s.t.Helper()
	testutil.EventuallyReport(s.t, waitTimeout, func() bool { return s.hub.parked.Load() == int64(n) },
		func() string { return fmt.Sprintf("%d clients parked, want %d", s.hub.parked.Load(), n) })
}

func parkModes() []struct {
	name  string
	plain bool
} {
	return []struct {
		name  string
		plain bool
	}{{"tls", false}, {"plain", true}}
}

// TestParkedClients: quiet clients are parked, and relay as before once
// they send again, a message cut in two across a park included; what is
// relayed to a parked client reaches it.
func TestParkedClients(t *testing.T) {
	for _, m := range parkModes() {
		t.Run(m.name, func(t *testing.T) {
			s := startParkHub(t, m.plain, Config{})
			a := s.connect(1)
			b := s.connect(2)
			for round := range 3 {
				s.waitParked(2)
				msg := fmt.Sprintf("round %d\x00", round)
				a.send(msg)
				b.expect(msg)
				s.waitParked(2)
				b.send("re: " + msg)
				a.expect("re: " + msg)
			}
			s.waitParked(2)
			a.send("<msg>first half ")
			s.waitParked(2) // parked holding half a message
			a.send("second half</msg>\x00")
			b.expect("<msg>first half second half</msg>\x00")
			if n := clientCount(s.hub); n != 2 {
				t.Fatalf("%d clients, want 2", n)
			}
			s.waitParked(2)
			if st := s.hub.Stats(); st.Parked != 2 || st.Clients != 2 {
				t.Fatalf("Stats %+v, want 2 clients, 2 parked", st)
			}
		})
	}
}

// TestParkNever: with ParkAfter below zero no client is parked, however
// long it is quiet, and it relays as before.
func TestParkNever(t *testing.T) {
	s := startParkHub(t, false, Config{ParkAfter: -1})
	a := s.connect(1)
	b := s.connect(2)
	time.Sleep(10 * parkAfter)
	if n := s.hub.parked.Load(); n != 0 {
		t.Fatalf("%d clients parked with ParkAfter -1, want 0", n)
	}
	a.send("still here\x00")
	b.expect("still here\x00")
}

// TestParkTimingEdges: a client that sends at intervals around the linger,
// so that messages come just before, at and just after the moment it
// parks, loses none and keeps their order.
func TestParkTimingEdges(t *testing.T) {
	s := startParkHub(t, false, Config{})
	a := s.connect(1)
	b := s.connect(2)
	pauses := []time.Duration{0, 1, 10, 18, 19, 20, 21, 22, 25, 39, 40, 41, 60}
	var want []string
	for i := range 3 * len(pauses) {
		time.Sleep(pauses[i%len(pauses)] * time.Millisecond)
		msg := fmt.Sprintf("m%03d\x00", i)
		a.send(msg)
		want = append(want, msg)
	}
	b.expect(want...)
	b.send("back\x00")
	a.expect("back\x00")
}

// TestParkedClientLeaves: a parked client that hangs up is closed as
// client_closed, and its listener's connection slot is given back.
func TestParkedClientLeaves(t *testing.T) {
	s := startParkHub(t, false, Config{})
	a := s.connect(1)
	s.waitParked(1)
	a.conn.Close()
	testutil.EventuallyReport(t, waitTimeout, func() bool { return s.closed(ReasonClientClosed) == 1 },
		func() string { return fmt.Sprintf("%d closed as client_closed, want 1", s.closed(ReasonClientClosed)) })
	if n := clientCount(s.hub); n != 0 {
		t.Fatalf("%d clients after the parked one left, want 0", n)
	}
	if n := s.hub.parked.Load(); n != 0 {
		t.Fatalf("%d parked after the client left, want 0", n)
	}
	// The server ends only once every connection is over: its shutdown
	// returns at once, not after its grace.
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(waitTimeout):
		t.Fatal("secure.Server.Serve still waiting for the parked client's connection")
	}
}

// TestParkedShutdown: cancelling the listener's context closes parked
// clients as shutdown, and the listener's Serve returns once they are.
func TestParkedShutdown(t *testing.T) {
	s := startParkHub(t, false, Config{})
	a := s.connect(1)
	b := s.connect(2)
	s.waitParked(2)
	s.cancel()
	a.expectClosed()
	b.expectClosed()
	select {
	case <-s.done:
	case <-time.After(waitTimeout):
		t.Fatal("secure.Server.Serve did not return")
	}
	if n := s.closed(ReasonShutdown); n != 2 {
		t.Fatalf("%d closed as shutdown, want 2", n)
	}
	s.waitLog("chat client closed", "reason=shutdown")
}

// TestParkedHubClose: Hub.Close ends parked clients and its Poller.
func TestParkedHubClose(t *testing.T) {
	s := startParkHub(t, false, Config{})
	a := s.connect(1)
	s.waitParked(1)
	if err := s.hub.Close(); err != nil {
		t.Fatal(err)
	}
	a.expectClosed()
	if n := s.closed(ReasonShutdown); n != 1 {
		t.Fatalf("%d closed as shutdown, want 1", n)
	}
	if s.hub.poll != nil {
		t.Fatal("the Poller outlived Hub.Close")
	}
}

// TestParkedSlowReceiver: a parked client that reads nothing while a
// sender floods its room is dropped as slow_consumer (its writer's
// failure ends it from the Poller), and the sender is not.
func TestParkedSlowReceiver(t *testing.T) {
	s := startParkHub(t, false, Config{QueueBytes: 64 << 10, MaxMessage: 4 << 10, SlowReceiverTimeout: 200 * time.Millisecond, WriteTimeout: time.Minute})
	a := s.connect(1)
	s.connect(2) // a slow client: connected, parked, never reads
	s.waitParked(2)
	msg := strings.Repeat("x", 4000) + "\x00"
	done := make(chan error, 1)
	go func() {
		for range 2000 {
			if _, err := a.conn.Write([]byte(msg)); err != nil {
				done <- err
				return
			}
			if s.closed(ReasonSlowConsumer) > 0 {
				break
			}
		}
		done <- nil
	}()
	testutil.EventuallyReport(t, waitTimeout, func() bool { return s.closed(ReasonSlowConsumer) == 1 },
		func() string { return fmt.Sprintf("%d closed as slow_consumer, want 1", s.closed(ReasonSlowConsumer)) })
	if err := <-done; err != nil {
		t.Fatalf("sender: %v", err)
	}
	if n := clientCount(s.hub); n != 1 {
		t.Fatalf("%d clients, want the sender alone", n)
	}
}
