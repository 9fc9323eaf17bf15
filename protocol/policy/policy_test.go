package policy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/ratelog"
	"github.com/passerelle/passerelle/internal/testutil"
)

func TestDefault(t *testing.T) {
	tests := []struct {
		ports []int
		want  string
	}{
		{nil, `<allow-access-from domain="*" to-ports="*"/>`},
		{[]int{10000}, `<allow-access-from domain="*" to-ports="10000"/>`},
		{[]int{10000, 10001}, `<allow-access-from domain="*" to-ports="10000,10001"/>`},
	}
	for _, tt := range tests {
		doc := Default(tt.ports...)
		if !bytes.Contains(doc, []byte(tt.want)) {
			t.Errorf("Default(%v) = %s, want it to contain %s", tt.ports, doc, tt.want)
		}
		if err := Validate(doc); err != nil {
			t.Errorf("Validate(Default(%v)) = %v", tt.ports, err)
		}
		if bytes.IndexByte(doc, 0) >= 0 {
			t.Errorf("Default(%v) contains a NUL", tt.ports)
		}
	}
}

func TestResponse(t *testing.T) {
	for _, doc := range []string{"<cross-domain-policy/>", "<cross-domain-policy/>\x00"} {
		if got := string(Response([]byte(doc))); got != "<cross-domain-policy/>\x00" {
			t.Errorf("Response(%q) = %q", doc, got)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		doc  string
		want string
	}{
		{"<cross-domain-policy><allow-access-from domain=\"*\" to-ports=\"*\"/></cross-domain-policy>", ""},
		{"  \n", "policy: the policy document is empty"},
		{"<cross-domain-policy>\x00</cross-domain-policy>", "policy: NUL byte at offset 21 (a Flash client stops reading there)"},
		{"<policy/>", "policy: root element is <policy>, want <cross-domain-policy>"},
		{"<cross-domain-policy>", "policy: not well-formed XML: XML syntax error on line 1: unexpected EOF"},
		{"<?xml version=\"1.0\"?>", "policy: no <cross-domain-policy> element"},
	}
	for _, tt := range tests {
		err := Validate([]byte(tt.doc))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("Validate(%q) = %q, want %q", tt.doc, got, tt.want)
		}
	}
}

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln := testutil.Listen(t)
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestGateCheck(t *testing.T) {
	doc := Default(10000)
	tests := []struct {
		name      string
		writes    []string
		pause     time.Duration // between writes
		wantReply string        // what the client reads before the close; "" when handed on
		wantOn    bool          // handed back to the service
		wantRead  string        // what the service then reads first
	}{
		{"request", []string{Request}, 0, string(Response(doc)), false, ""},
		{"request byte by byte", strings.Split(Request, ""), 0, string(Response(doc)), false, ""},
		{"request slower than Wait", []string{"<policy-file-", "request/>\x00"}, 150 * time.Millisecond, string(Response(doc)), false, ""},
		{"ordinary message", []string{"hello\x00world\x00"}, 0, "", true, "hello\x00world\x00"},
		{"diverges late", []string{"<policy-file-reques", "X/>\x00"}, 0, "", true, "<policy-file-requesX/>\x00"},
		{"silence", nil, 0, "", true, ""},
		{"request without NUL then silence", []string{"<policy-file-request/>"}, 0, "", true, "<policy-file-request/>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := pair(t)
			g := &Gate{Policy: doc, Wait: 50 * time.Millisecond, ReadTimeout: 400 * time.Millisecond}
			go func() {
				for i, w := range tt.writes {
					if i > 0 {
						time.Sleep(tt.pause)
					}
					c.Write([]byte(w))
				}
			}()
			next, on := g.Check(context.Background(), s)
			if on != tt.wantOn {
				t.Fatalf("handed on = %v, want %v", on, tt.wantOn)
			}
			if !on {
				s.Close()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				got, _ := io.ReadAll(c)
				if string(got) != tt.wantReply {
					t.Fatalf("client read %q, want %q", got, tt.wantReply)
				}
				return
			}
			// The service reads from the very first byte, and the deadline
			// is cleared: a later read waits for data.
			go func() {
				time.Sleep(150 * time.Millisecond)
				c.Write([]byte("z"))
			}()
			want := tt.wantRead + "z"
			got := make([]byte, len(want))
			if _, err := io.ReadFull(next, got); err != nil || string(got) != want {
				t.Fatalf("service read %q, %v; want %q", got, err, want)
			}
		})
	}
}

func TestGateClientLeaves(t *testing.T) {
	log, logs := testutil.Logger(t, slog.LevelInfo)
	c, s := pair(t)
	c.Write([]byte("<pol"))
	c.Close()
	g := &Gate{Logger: log}
	if next, on := g.Check(context.Background(), s); next != nil || on {
		t.Fatalf("Check = %v, %v; want nil, false", next, on)
	}
	testutil.EventuallyContains(t, logs, `msg="client left before its first message" remote_addr=`, time.Second)
	testutil.EventuallyContains(t, logs, `first_bytes=<pol error=EOF`, time.Second)
}

// TestGateLinesRateLimited: clients leaving half-way through in a loop
// cost one line per interval through PeerLog, not one each.
func TestGateLinesRateLimited(t *testing.T) {
	log, logs := testutil.Logger(t, slog.LevelInfo)
	g := &Gate{Logger: log, PeerLog: ratelog.New(log, 0)}
	const clients = 200
	for range clients {
		c, s := pair(t)
		c.Write([]byte("<pol"))
		c.Close()
		if next, on := g.Check(context.Background(), s); next != nil || on {
			t.Fatalf("Check = %v, %v; want nil, false", next, on)
		}
		s.Close()
	}
	if n := strings.Count(logs.String(), `msg="client left before its first message"`); n != 1 {
		t.Fatalf("%d lines for %d clients, want 1:\n%s", n, clients, logs.String())
	}
}

func TestGateCancelled(t *testing.T) {
	_, s := pair(t)
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gate{Wait: time.Minute}
	done := make(chan bool)
	go func() {
		_, on := g.Check(ctx, s)
		done <- on
	}()
	cancel()
	select {
	case on := <-done:
		if on {
			t.Fatal("a cancelled Check handed the client on")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Check did not return when its context was cancelled")
	}
}
