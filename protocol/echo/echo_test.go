package echo

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/protocol/policy"
)

// serve runs an echo server on loopback, over TLS when useTLS is set, and
// returns a dial function.
func serve(t *testing.T, srv *Server, useTLS bool) (dial func() net.Conn, cancel func()) {
	t.Helper()
	ln := testutil.Listen(t)
	var cliCfg *tls.Config
	if useTLS {
		root := testpki.NewRoot(t, testpki.CAOptions{})
		leaf := root.Leaf(t, testpki.LeafOptions{})
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}})
		cliCfg = &tls.Config{RootCAs: root.Pool(), ServerName: "localhost"}
	}
	ctx, cancelCtx := context.WithCancel(context.Background())
	wait := testutil.Serve(ln, func(c net.Conn) { srv.ServeConn(ctx, c) })
	stop := func() { cancelCtx(); ln.Close(); wait() }
	t.Cleanup(stop)
	return func() net.Conn {
		var c net.Conn
		var err error
		if useTLS {
			c, err = tls.Dial("tcp", ln.Addr().String(), cliCfg)
		} else {
			c, err = net.Dial("tcp", ln.Addr().String())
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}, stop
}

func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v (got %q)", n, err, b)
	}
	return string(b)
}

func TestEcho(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := map[bool]string{false: "tcp", true: "tls"}[useTLS]
		t.Run(name, func(t *testing.T) {
			log, logs := testutil.Logger(t, slog.LevelInfo)
			dial, _ := serve(t, &Server{Logger: log}, useTLS)

			// A client that waits gets the greeting.
			c := dial()
			if got := readN(t, c, len(Greeting)); got != Greeting {
				t.Fatalf("greeting = %q", got)
			}
			for _, msg := range []string{"hello", "<a>été</a>\x00", strings.Repeat("z", 3000)} {
				c.Write([]byte(msg))
				if got := readN(t, c, len(Prefix)+len(msg)); got != Prefix+msg {
					t.Fatalf("echo = %q, want %q", got, Prefix+msg)
				}
			}
			c.Close()
			testutil.EventuallyContains(t, logs, "reason=client_closed", 10*time.Second)

			// A client that speaks first gets the greeting, then the echo of
			// its first chunk in one piece.
			c = dial()
			first := "first chunk, sent before the greeting was read"
			c.Write([]byte(first))
			if got := readN(t, c, len(Greeting)+len(Prefix)+len(first)); got != Greeting+Prefix+first {
				t.Fatalf("got %q", got)
			}
		})
	}
}

// TestEchoNoPolicy: the listener answers policy requests before a service
// sees the connection, so here a policy request is a chunk like any other,
// echoed after the greeting, which goes out at once.
func TestEchoNoPolicy(t *testing.T) {
	log, logs := testutil.Logger(t, slog.LevelInfo)
	dial, _ := serve(t, &Server{Logger: log}, true)
	c := dial()
	c.Write([]byte(policy.Request))
	want := Greeting + Prefix + policy.Request
	if got := readN(t, c, len(want)); got != want {
		t.Fatalf("got %q, want the greeting and the echo of the policy request", got)
	}
	c.Close()
	testutil.EventuallyContains(t, logs, "reason=client_closed", 10*time.Second)
}

// abortConn is a connection with the listener's Abort method, counting
// calls.
type abortConn struct {
	net.Conn
	aborts *atomic.Int32
}

func (c abortConn) Abort() error {
	c.aborts.Add(1)
	return c.Conn.Close()
}

// TestEchoWriteErrorAborts: a client that sends without reading is dropped
// after WriteTimeout through the connection's Abort, not Close.
func TestEchoWriteErrorAborts(t *testing.T) {
	log, logs := testutil.Logger(t, slog.LevelInfo)
	srv := &Server{WriteTimeout: 100 * time.Millisecond, Logger: log}
	var aborts atomic.Int32
	ln := testutil.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	wait := testutil.Serve(ln, func(c net.Conn) { srv.ServeConn(ctx, abortConn{c, &aborts}) })
	t.Cleanup(func() { cancel(); ln.Close(); wait() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() { // never reads a byte back
		chunk := make([]byte, 64<<10)
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	testutil.EventuallyContains(t, logs, "reason=write_error", 10*time.Second)
	if n := aborts.Load(); n != 1 {
		t.Fatalf("Abort called %d times, want 1", n)
	}
}

func TestEchoShutdown(t *testing.T) {
	log, logs := testutil.Logger(t, slog.LevelInfo)
	dial, stop := serve(t, &Server{Logger: log}, false)
	c := dial()
	readN(t, c, len(Greeting))
	stop()
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after shutdown = %v, want EOF", err)
	}
	testutil.EventuallyContains(t, logs, "reason=shutdown", 10*time.Second)
}

// TestEchoIdleTimeout closes a client that falls silent for IdleTimeout,
// and keeps one that keeps talking.
func TestEchoIdleTimeout(t *testing.T) {
	log, logs := testutil.Logger(t, slog.LevelInfo)
	// The pauses are a quarter of the timeout, so that a loaded machine
	// (the race detector, other packages' tests) keeps them under it.
	dial, _ := serve(t, &Server{IdleTimeout: time.Second, Logger: log}, false)
	c := dial()
	readN(t, c, len(Greeting))
	for range 5 { // talking every 250ms keeps it open past the timeout
		time.Sleep(250 * time.Millisecond)
		c.Write([]byte("x"))
		if got := readN(t, c, len(Prefix)+1); got != Prefix+"x" {
			t.Fatalf("echo = %q", got)
		}
	}
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read from a silent client's connection = %v, want EOF after the idle timeout", err)
	}
	testutil.EventuallyContains(t, logs, "reason=idle_timeout", 10*time.Second)
}
