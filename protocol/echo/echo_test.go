package echo

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strings"
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
			dial, _ := serve(t, &Server{PolicyWait: 20 * time.Millisecond, Logger: log}, useTLS)

			// A client that waits gets the greeting after the policy wait.
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
			// its first chunk in one piece (longer than a policy request).
			c = dial()
			first := "first chunk, longer than <policy-file-request/> is"
			c.Write([]byte(first))
			if got := readN(t, c, len(Greeting)+len(Prefix)+len(first)); got != Greeting+Prefix+first {
				t.Fatalf("got %q", got)
			}
		})
	}
}

func TestEchoPolicy(t *testing.T) {
	doc := policy.Default(8087)
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"request", []string{policy.Request}, string(doc) + "\x00"},
		{"request in two writes", []string{"<policy-file-", "request/>\x00"}, string(doc) + "\x00"},
		{"a prefix, then silence", []string{"<pol"}, Greeting + Prefix + "<pol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logs := testutil.Logger(t, slog.LevelInfo)
			dial, _ := serve(t, &Server{Policy: doc, PolicyWait: 300 * time.Millisecond, Logger: log}, true)
			c := dial()
			for _, w := range tt.writes {
				c.Write([]byte(w))
			}
			if tt.want != string(doc)+"\x00" {
				if got := readN(t, c, len(tt.want)); got != tt.want {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
				return
			}
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("reply = %q, want the policy alone", got)
			}
			testutil.EventuallyContains(t, logs, "reason=policy", 10*time.Second)
		})
	}
}

func TestEchoShutdown(t *testing.T) {
	log, logs := testutil.Logger(t, slog.LevelInfo)
	dial, stop := serve(t, &Server{PolicyWait: 10 * time.Millisecond, Logger: log}, false)
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
	dial, _ := serve(t, &Server{PolicyWait: 10 * time.Millisecond, IdleTimeout: 200 * time.Millisecond, Logger: log}, false)
	c := dial()
	readN(t, c, len(Greeting))
	for range 3 { // talking every 100ms keeps it open past the timeout
		time.Sleep(100 * time.Millisecond)
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
