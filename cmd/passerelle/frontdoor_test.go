package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/protocol/policy"
	"github.com/passerelle/passerelle/protocol/xmlsocket"
	"github.com/passerelle/passerelle/web"
)

// These tests drive the front door of serve's listeners (web.Door) over
// real TLS and plain TCP on loopback: each kind of client told apart by its
// first bytes, and nothing lost to a client while it is being told apart.

// frontDoor is a serve with a TLS and a plain chat listener, and a way to
// dial each the way a raw client does (TLS without ALPN).
type frontDoor struct {
	s                 *served
	tlsAddr, plainAdr string
	dial              map[string]func(t *testing.T) net.Conn
}

func startFrontDoor(t *testing.T) *frontDoor {
	t.Helper()
	dataDir := t.TempDir()
	s := startServe(t, dataDir, "--plain-address", "127.0.0.1:0")
	pool, _ := caPool(t, dataDir)
	f := &frontDoor{s: s, tlsAddr: s.addrs["chat"][0], plainAdr: s.addrs["chat"][1]}
	f.dial = map[string]func(t *testing.T) net.Conn{
		"tls": func(t *testing.T) net.Conn { return tlsNoALPN(t, f.tlsAddr, pool) },
		"plain": func(t *testing.T) net.Conn {
			c, err := net.Dial("tcp", f.plainAdr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		},
	}
	return f
}

// tlsNoALPN is a raw TLS client that offers no ALPN, its handshake done.
func tlsNoALPN(t *testing.T, addr string, pool *x509.CertPool) *tls.Conn {
	t.Helper()
	d := tls.Dialer{Config: &tls.Config{ServerName: "localhost", RootCAs: pool}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*tls.Conn)
}

// waitMembers returns once the default room counts n members besides a
// watcher that asks for the count, and closes the watcher.
func waitMembers(t *testing.T, addr string, pool *x509.CertPool, n int) {
	t.Helper()
	w := tlsNoALPN(t, addr, pool)
	defer w.Close()
	want := fmt.Sprintf(`<passerelle:members room="default" count="%d"></passerelle:members>`+"\x00", n+1)
	got := ""
	testutil.EventuallyReport(t, waitTimeout, func() bool {
		io.WriteString(w, "<passerelle:who/>\x00")
		got = readFrames(t, w, 1)[0]
		return got == want
	}, func() string { return fmt.Sprintf("the room's count: got %q, want %q", got, want) })
}

// expectNothingBut checks that the next message c gets is want: whatever
// a client sent before want, to the room, never reached c.
func expectNothingBut(t *testing.T, c net.Conn, want string) {
	t.Helper()
	if got := readFrames(t, c, 1); got[0] != want {
		t.Fatalf("a member got %q, want %q first", got[0], want)
	}
}

// watchRoom puts a member (plain) and a marker (TLS) in the default room.
// The function it returns has the marker send note and checks that it is
// the next thing the member got: whatever a client sent before it reached
// nobody.
func (f *frontDoor) watchRoom(t *testing.T) func(t *testing.T, note string) {
	member := f.dial["plain"](t)
	ping(t, member)
	marker := f.dial["tls"](t)
	ping(t, marker)
	return func(t *testing.T, note string) {
		t.Helper()
		io.WriteString(marker, note+"\x00")
		expectNothingBut(t, member, note+"\x00")
	}
}

// eachListener runs test in a subtest on a new client of the TLS and of
// the plain listener, then checks with watchRoom that the room got nothing
// of what that client sent (note is the marker's message).
func (f *frontDoor) eachListener(t *testing.T, note string, test func(t *testing.T, c net.Conn)) {
	t.Helper()
	relayed := f.watchRoom(t)
	for _, kind := range []string{"tls", "plain"} {
		t.Run(kind, func(t *testing.T) {
			test(t, f.dial[kind](t))
			relayed(t, note)
		})
	}
}

// TestServeSilentClientGetsEverything: a client that says nothing is a
// member of the room from the end of its handshake: a message sent 10 ms
// after it connected reaches it, over TLS without ALPN, plain TCP and a
// WebSocket, and so do the room's next messages, in order.
func TestServeSilentClientGetsEverything(t *testing.T) {
	f := startFrontDoor(t)
	sender := f.dial["tls"](t)
	ping(t, sender)
	for _, kind := range []string{"tls", "plain", "websocket"} {
		t.Run(kind, func(t *testing.T) {
			if kind == "websocket" {
				ws := mustWS(t, f.plainAdr, nil)
				time.Sleep(10 * time.Millisecond)
				fmt.Fprintf(sender, "to %s 1\x00to %s 2\x00", kind, kind)
				wsExpect(t, ws, "to "+kind+" 1\x00", "to "+kind+" 2\x00")
				ws.Close()
				return
			}
			silent := f.dial[kind](t)
			time.Sleep(10 * time.Millisecond)
			fmt.Fprintf(sender, "to %s 1\x00to %s 2\x00", kind, kind)
			want := []string{"to " + kind + " 1\x00", "to " + kind + " 2\x00"}
			if got := readFrames(t, silent, 2); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("silent client got %q, want %q", got, want)
			}
			silent.Close()
		})
	}
}

// TestServePipeRightAfterAReceiver: 500 lines piped into passerelle chat
// right after a receiver connected all reach it, and chat exits 0.
func TestServePipeRightAfterAReceiver(t *testing.T) {
	const n = 500
	var input strings.Builder
	for i := range n {
		fmt.Fprintf(&input, "%d\n", i)
	}
	dataDir := t.TempDir()
	s := startServe(t, dataDir)
	pool, _ := caPool(t, dataDir)
	// A relay counts a client once the server's side of the handshake is
	// done and the client admitted to its room, which a silent receiver
	// cannot see from its side (its dial may return first, under TLS 1.2
	// as under 1.3): the room's count says when.
	receiver := tlsNoALPN(t, s.addrs["chat"][0], pool)
	waitMembers(t, s.addrs["chat"][0], pool, 1)
	if _, errOut, err := runCLIInput(t, input.String(), "--data-dir", dataDir, "chat", s.addrs["chat"][0],
		"--servername", "localhost", "--linger", "100ms"); err != nil {
		t.Fatalf("chat: %v\n%s", err, errOut)
	}
	receiver.SetReadDeadline(time.Now().Add(waitTimeout))
	r := xmlsocket.NewReader(receiver, 1<<10)
	for i := range n {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("message %d of %d: %v", i, n, err)
		}
		if want := fmt.Sprintf("%d\x00", i); string(f) != want {
			t.Fatalf("message %d is %q, want %q", i, f, want)
		}
	}
}

// TestServePolicyRequestInsideTLS: the policy request as the first message
// of a client, inside TLS or on the plain listener, is answered with the
// policy and a NUL and the connection closed; nobody in the room sees it.
func TestServePolicyRequestInsideTLS(t *testing.T) {
	f := startFrontDoor(t)
	f.eachListener(t, "after the request", func(t *testing.T, c net.Conn) {
		io.WriteString(c, policy.Request)
		c.SetReadDeadline(time.Now().Add(waitTimeout))
		got, err := io.ReadAll(c)
		if err != nil || !strings.HasPrefix(string(got), `<?xml version="1.0"?>`) ||
			!strings.HasSuffix(string(got), "</cross-domain-policy>\x00") {
			t.Fatalf("policy requester got %q, %v; want the policy, a NUL and the end", got, err)
		}
	})
}

// TestServeHTTP2PrefaceRefused: an HTTP/2 client with prior knowledge, over
// TLS without ALPN or plain, gets the server's SETTINGS and a GOAWAY saying
// HTTP_1_1_REQUIRED, and its preface reaches nobody.
func TestServeHTTP2PrefaceRefused(t *testing.T) {
	f := startFrontDoor(t)
	f.eachListener(t, "after the preface", func(t *testing.T, c net.Conn) {
		io.WriteString(c, http2.ClientPreface)
		fr := http2.NewFramer(c, c)
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
		c.SetReadDeadline(time.Now().Add(waitTimeout))
		if fr, err := fr.ReadFrame(); err != nil || fr.Header().Type != http2.FrameSettings {
			t.Fatalf("first frame %v, %v; want SETTINGS", fr, err)
		}
		ga, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("second frame: %v", err)
		}
		if g, ok := ga.(*http2.GoAwayFrame); !ok || g.ErrCode != http2.ErrCodeHTTP11Required || string(g.DebugData()) != web.HTTP2Refusal {
			t.Fatalf("second frame %v; want GOAWAY HTTP_1_1_REQUIRED %q", ga, web.HTTP2Refusal)
		}
		c.Close()
	})
	testutil.Eventually(t, "the refusal in the log", waitTimeout, func() bool {
		return strings.Contains(f.s.errOut.String(), "HTTP/2 client refused: this port serves HTTP/1.1 and its raw protocol")
	})
}

// TestServeFirstLineLikeHTTP: a chat message that starts like a request
// line is relayed as chat; a real request line, however slowly it comes,
// gets the chat page, and nothing the room relayed meanwhile is written
// before the response.
func TestServeFirstLineLikeHTTP(t *testing.T) {
	f := startFrontDoor(t)
	member := f.dial["plain"](t)
	ping(t, member)
	for _, kind := range []string{"tls", "plain"} {
		t.Run(kind+" GET ready", func(t *testing.T) {
			c := f.dial[kind](t)
			io.WriteString(c, "GET ready\x00")
			expectNothingBut(t, member, "GET ready\x00")
			c.Close()
		})
		t.Run(kind+" page", func(t *testing.T) {
			c := f.dial[kind](t)
			io.WriteString(c, "GET / HTT")
			time.Sleep(50 * time.Millisecond)
			io.WriteString(member, "while the request line comes\x00")
			time.Sleep(50 * time.Millisecond)
			io.WriteString(c, "P/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(waitTimeout))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("HTTP response: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("<title>")) {
				t.Fatalf("status %d, body %.80q; want the chat page", resp.StatusCode, body)
			}
			if bytes.Contains(body, []byte("while the request line comes")) {
				t.Fatal("the relayed message reached the HTTP client")
			}
		})
	}
}
