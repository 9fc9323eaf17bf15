package secure

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/protocol/policy"
)

// TestPrefaceOnEveryListener: the policy Gate answers a requester on a plain
// and on a TLS listener, and the handler never sees the request; any other
// plain client reaches the handler from its first byte on a plain listener,
// and gets the hint on a TLS one.
func TestPrefaceOnEveryListener(t *testing.T) {
	w := newWorld(t)
	doc := policy.Default(10000)
	gate := &policy.Gate{Policy: doc, Wait: 50 * time.Millisecond}
	for _, plain := range []bool{true, false} {
		name := map[bool]string{true: "plain", false: "tls"}[plain]
		t.Run(name, func(t *testing.T) {
			cfg := ServerConfig{Plain: plain, Preface: gate.Check}
			if !plain {
				cfg.GetCertificate = staticCert(w.root.Leaf(t, testpki.LeafOptions{}).TLS())
			}
			handled := make(chan string, 4)
			ts := startServer(t, cfg, func(_ context.Context, c *Conn) {
				b := make([]byte, 5)
				n, _ := io.ReadFull(c, b)
				handled <- string(b[:n])
			})

			req := dialFrom(t, "127.0.0.1", ts.addr)
			io.WriteString(req, policy.Request)
			req.SetReadDeadline(time.Now().Add(5 * time.Second))
			if got, _ := io.ReadAll(req); string(got) != string(policy.Response(doc)) {
				t.Fatalf("policy requester read %q", got)
			}

			other := dialFrom(t, "127.0.0.1", ts.addr)
			io.WriteString(other, "hello")
			if plain {
				select {
				case got := <-handled:
					if got != "hello" {
						t.Fatalf("handler read %q, want the client's first bytes", got)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("plain client never reached the handler")
				}
			} else {
				other.SetReadDeadline(time.Now().Add(5 * time.Second))
				if got, _ := io.ReadAll(other); string(got) != plainHint {
					t.Fatalf("plain text on the TLS port got %q, want the hint", got)
				}
			}
			select {
			case got := <-handled:
				t.Fatalf("handler saw %q", got)
			default:
			}
		})
	}
}

// TestSessionResumption: a client resumes its session on a second
// connection: every connection's configuration shares the listener's
// ticket keys, which crypto/tls rotates itself.
func TestSessionResumption(t *testing.T) {
	w := newWorld(t)
	ts := startServer(t, ServerConfig{GetCertificate: staticCert(w.root.Leaf(t, testpki.LeafOptions{}).TLS())}, nil)
	cc := &tls.Config{RootCAs: w.root.Pool(), ServerName: "localhost", ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	for i, want := range []bool{false, true, true} {
		c, err := tls.Dial("tcp", ts.addr, cc)
		if err != nil {
			t.Fatal(err)
		}
		// Reading the greeting also reads the TLS 1.3 session ticket.
		b := make([]byte, len("status unknown\n"))
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		if got := c.ConnectionState().DidResume; got != want {
			t.Errorf("connection %d: resumed %v, want %v", i, got, want)
		}
		c.Close()
	}
}

// TestAbortSendsNoAlert: Abort drops the TCP connection without the
// close_notify alert that Close sends: the client receives one record less.
func TestAbortSendsNoAlert(t *testing.T) {
	w := newWorld(t)
	received := map[bool]int64{}
	for _, abort := range []bool{false, true} {
		ts := startServer(t, ServerConfig{GetCertificate: staticCert(w.root.Leaf(t, testpki.LeafOptions{}).TLS())}, func(_ context.Context, c *Conn) {
			io.WriteString(c, "bye\n")
			if abort {
				c.Abort()
			}
		})
		raw := dialFrom(t, "127.0.0.1", ts.addr)
		counted := &countingConn{Conn: raw}
		c := tls.Client(counted, &tls.Config{RootCAs: w.root.Pool(), ServerName: "localhost"})
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, _ := io.ReadAll(c)
		if string(got) != "bye\n" {
			t.Errorf("abort=%v: read %q", abort, got)
		}
		received[abort] = counted.n
	}
	if d := received[false] - received[true]; d <= 0 || d > 64 {
		t.Errorf("Close sent %d bytes more than Abort, want one short close_notify record", d)
	}
}

type countingConn struct {
	net.Conn
	n int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n += int64(n)
	return n, err
}

// TestPrefaceBoundByHandshakeTimeout: a plain client that trickles a policy
// request is dropped at the handshake deadline, not held forever.
func TestPrefaceBoundByHandshakeTimeout(t *testing.T) {
	log, logs := testutil.Logger(t, slog.LevelInfo)
	gate := &policy.Gate{Wait: 50 * time.Millisecond, ReadTimeout: time.Minute, Logger: log}
	ts := startServer(t, ServerConfig{Plain: true, Preface: gate.Check, HandshakeTimeout: 300 * time.Millisecond}, nil)
	c := dialFrom(t, "127.0.0.1", ts.addr)
	io.WriteString(c, "<pol")
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(c)
	if len(got) != 0 || time.Since(start) > 5*time.Second {
		t.Fatalf("trickling client read %q after %s", got, time.Since(start))
	}
	// The echo handler would have greeted the client: got is empty, so it
	// never ran; the Gate says why it closed.
	testutil.EventuallyContains(t, logs, `msg="client did not finish its first message in time; closing"`, time.Second)
	testutil.EventuallyContains(t, logs, `first_bytes=<pol`, time.Second)
}
