package readiness

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/peekconn"
)

const waitTimeout = 5 * time.Second

// pair is a connected loopback TCP pair: server side, client side.
func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	cli, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv := <-accepted
	if srv == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { srv.Close(); cli.Close() })
	return srv, cli
}

func newPoller(t *testing.T) *Poller {
	t.Helper()
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// armed is the number of connections p watches.
func armed(p *Poller) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waits)
}

// fired returns a function for Arm and a channel that receives once it ran.
func fired() (func(), chan struct{}) {
	ch := make(chan struct{}, 1)
	return func() { ch <- struct{}{} }, ch
}

func mustFire(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitTimeout):
		t.Fatalf("%s: the function was not called in %v", what, waitTimeout)
	}
}

func mustNotFire(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: the function was called", what)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestArmWakes: each thing a peer can do to an armed connection calls the
// function once, and the bytes it sent are still there to read.
func TestArmWakes(t *testing.T) {
	tests := []struct {
		name     string
		peer     func(cli net.Conn) error
		wantRead string
		wantEOF  bool
	}{
		{name: "bytes", peer: func(cli net.Conn) error { _, err := cli.Write([]byte("hello")); return err }, wantRead: "hello"},
		{name: "close", peer: func(cli net.Conn) error { return cli.Close() }, wantEOF: true},
		{name: "half-close", peer: func(cli net.Conn) error { return cli.(*net.TCPConn).CloseWrite() }, wantEOF: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPoller(t)
			srv, cli := pair(t)
			fn, ch := fired()
			if _, err := p.Arm(srv, fn); err != nil {
				t.Fatalf("Arm: %v", err)
			}
			if n := armed(p); n != 1 {
				t.Fatalf("%d waits armed after Arm, want 1", n)
			}
			mustNotFire(t, ch, "before the peer acted")
			if err := tt.peer(cli); err != nil {
				t.Fatal(err)
			}
			mustFire(t, ch, tt.name)
			if n := armed(p); n != 0 {
				t.Fatalf("%d waits armed after the call, want 0", n)
			}
			srv.SetReadDeadline(time.Now().Add(waitTimeout))
			buf := make([]byte, 16)
			n, err := srv.Read(buf)
			if tt.wantEOF {
				if n != 0 || err == nil {
					t.Fatalf("read after %s: %d bytes, %v; want end of stream", tt.name, n, err)
				}
				return
			}
			if err != nil || string(buf[:n]) != tt.wantRead {
				t.Fatalf("read %q, %v; want %q", buf[:n], err, tt.wantRead)
			}
			// One-shot: more bytes do not call it again until re-armed.
			cli.Write([]byte("more"))
			mustNotFire(t, ch, "after the one call")
		})
	}
}

// TestArmRearm: a connection armed, woken, read and armed again is woken
// again, as the relay does with each idle spell.
func TestArmRearm(t *testing.T) {
	p := newPoller(t)
	srv, cli := pair(t)
	buf := make([]byte, 8)
	for i := range 3 {
		fn, ch := fired()
		if _, err := p.Arm(srv, fn); err != nil {
			t.Fatalf("Arm %d: %v", i, err)
		}
		cli.Write([]byte("x"))
		mustFire(t, ch, "re-armed")
		if _, err := srv.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
}

// TestArmBytesAlreadyThere: bytes that came before Arm call it at once.
func TestArmBytesAlreadyThere(t *testing.T) {
	p := newPoller(t)
	srv, cli := pair(t)
	cli.Write([]byte("early"))
	time.Sleep(20 * time.Millisecond)
	fn, ch := fired()
	if _, err := p.Arm(srv, fn); err != nil {
		t.Fatal(err)
	}
	mustFire(t, ch, "bytes before Arm")
}

// TestTakeBack: a wait taken back with Disarm is never called, one taken
// back with Wake is called at once; either way once at most, whatever the
// peer sends then, and each says so the first time only; a wait already
// called is not called again, and both say so.
func TestTakeBack(t *testing.T) {
	for _, tt := range []struct {
		name   string
		take   func(*Wait) bool
		called bool // whether taking the wait back calls its function
	}{
		{"Disarm", (*Wait).Disarm, false},
		{"Wake", (*Wait).Wake, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newPoller(t)
			srv, cli := pair(t)
			fn, ch := fired()
			w, err := p.Arm(srv, fn)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.take(w) {
				t.Fatalf("%s of a waiting wait reported false", tt.name)
			}
			if tt.called {
				mustFire(t, ch, tt.name)
			}
			if n := armed(p); n != 0 {
				t.Fatalf("%d waits armed after %s, want 0", n, tt.name)
			}
			if tt.take(w) {
				t.Fatalf("a second %s reported true", tt.name)
			}
			cli.Write([]byte("x"))
			mustNotFire(t, ch, "after "+tt.name+", bytes sent")

			w, err = p.Arm(srv, fn)
			if err != nil {
				t.Fatal(err)
			}
			mustFire(t, ch, "armed again with bytes waiting")
			if tt.take(w) {
				t.Fatalf("%s after the call reported true", tt.name)
			}
			mustNotFire(t, ch, tt.name+" after the call")
		})
	}
}

// TestArmLayers: Arm sees through the layers passerelle puts on a socket,
// calls back at once when one holds bytes read ahead, and refuses what has
// no socket under it.
func TestArmLayers(t *testing.T) {
	p := newPoller(t)

	srv, cli := pair(t)
	pc := peekconn.New(srv)
	fn, ch := fired()
	if _, err := p.Arm(pc, fn); err != nil {
		t.Fatalf("Arm through peekconn: %v", err)
	}
	mustNotFire(t, ch, "peekconn, nothing sent")
	cli.Write([]byte("ab"))
	mustFire(t, ch, "peekconn, bytes sent")

	// Peeked bytes, not yet read: the socket is empty but the layer is not.
	if _, err := pc.Fill(2); err != nil {
		t.Fatal(err)
	}
	w, err := p.Arm(pc, fn)
	if err != nil {
		t.Fatal(err)
	}
	mustFire(t, ch, "peekconn holding bytes")
	if w.Disarm() {
		t.Fatal("Disarm of a wait called at once reported true")
	}

	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Watchable(a) {
		t.Fatal("net.Pipe reported watchable")
	}
	if _, err := p.Arm(a, fn); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Arm(net.Pipe) = %v, want ErrUnsupported", err)
	}
	if !Watchable(srv) || !Watchable(pc) {
		t.Fatal("a TCP connection, bare or peeked, reported not watchable")
	}
}

// TestClose: Close drops what is armed without calling it, and Arm after
// Close is refused.
func TestClose(t *testing.T) {
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	srv, cli := pair(t)
	fn, ch := fired()
	if _, err := p.Arm(srv, fn); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	cli.Write([]byte("x"))
	mustNotFire(t, ch, "after Close")
	if _, err := p.Arm(srv, fn); !errors.Is(err, ErrClosed) {
		t.Fatalf("Arm after Close = %v, want ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestManyArmed: many connections armed at once each get their own call,
// more than one EpollWait batch.
func TestManyArmed(t *testing.T) {
	p := newPoller(t)
	const n = 300
	calls := make(chan int, n)
	clis := make([]net.Conn, n)
	for i := range n {
		srv, cli := pair(t)
		clis[i] = cli
		if _, err := p.Arm(srv, func() { calls <- i }); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range clis {
		c.Write([]byte("x"))
	}
	seen := make(map[int]bool)
	deadline := time.After(waitTimeout)
	for len(seen) < n {
		select {
		case i := <-calls:
			if seen[i] {
				t.Fatalf("connection %d called twice", i)
			}
			seen[i] = true
		case <-deadline:
			t.Fatalf("%d of %d called", len(seen), n)
		}
	}
}
