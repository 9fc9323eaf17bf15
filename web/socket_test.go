package web

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/internal/peekconn"
	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/protocol/envoie"
)

// TestIdleClientsPinged: a WebSocket client that answers the server's pings
// stays, however long it says nothing; one that answers nothing is closed
// after two intervals, with a log line saying why.
func TestIdleClientsPinged(t *testing.T) {
	log, logs := testutil.Logger(t, slog.LevelInfo)
	h := hub.New(hub.Config{})
	t.Cleanup(func() { h.Close() })
	origins, err := NewOrigins(nil, log)
	if err != nil {
		t.Fatal(err)
	}
	// Long enough for a pong to come back under the race detector on a
	// loaded machine: a client has one interval to answer a ping.
	const interval = 300 * time.Millisecond
	srv := serve(t, &Chat{Hub: h, Page: NewChatPage(), Origins: origins, MaxMessage: hub.DefaultMaxMessage, Logger: log, PingInterval: interval})
	dial := func() *websocket.Conn {
		d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: srv.ca.Pool()}}
		ws, _, err := d.Dial("wss://"+srv.addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		return ws
	}
	// A browser reads all the time, and its reading answers pings.
	alive := dial()
	got := make(chan string, 4)
	go func() {
		for {
			_, p, err := alive.ReadMessage()
			if err != nil {
				close(got)
				return
			}
			got <- string(p)
		}
	}()
	// A dead peer: connected, never reading, never answering.
	dead := dial()
	deadAddr := dead.LocalAddr().String()

	testutil.EventuallyContains(t, logs, `msg="websocket client answers no ping; closing" remote_addr=`+deadAddr, 5*time.Second)
	testutil.EventuallyContains(t, logs, `reason=ping_timeout`, time.Second)
	time.Sleep(5 * interval)
	if err := alive.WriteMessage(websocket.BinaryMessage, []byte("<passerelle:ping/>\x00")); err != nil {
		t.Fatal(err)
	}
	select {
	case p, ok := <-got:
		if !ok || p != "<passerelle:pong/>\x00" {
			t.Fatalf("the client that answers pings got %q (open: %v), want its pong", p, ok)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client that answers pings was not answered")
	}
}

// chatServer serves a fresh hub's Chat over TLS and dials WebSocket
// clients to it.
func chatServer(t *testing.T, ping time.Duration, cfg hub.Config) (func() *websocket.Conn, *hub.Hub, *testutil.Buffer) {
	t.Helper()
	log, logs := testutil.Logger(t, slog.LevelInfo)
	h := hub.New(cfg)
	t.Cleanup(func() { h.Close() })
	origins, err := NewOrigins(nil, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, &Chat{Hub: h, Page: NewChatPage(), Origins: origins, MaxMessage: hub.DefaultMaxMessage, Logger: log, PingInterval: ping})
	return func() *websocket.Conn {
		d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: srv.ca.Pool()}}
		ws, _, err := d.Dial("wss://"+srv.addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		return ws
	}, h, logs
}

// closeCode reads until the server's close frame and returns its code.
func closeCode(t *testing.T, ws *websocket.Conn) int {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		t.Fatalf("read: %v, want a close frame", err)
	}
}

// TestControlFrameFlood: pings cost the server a write each, so a client
// sending them without end is closed with 1008 after controlBurst or so,
// rather than answered a pong each.
func TestControlFrameFlood(t *testing.T) {
	dial, _, logs := chatServer(t, time.Minute, hub.Config{})
	ws := dial()
	var pongs atomic.Int64
	ws.SetPongHandler(func(string) error { pongs.Add(1); return nil })
	const pings = 2000
	go func() {
		for range pings {
			if ws.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(5*time.Second)) != nil {
				return
			}
		}
	}()
	if code := closeCode(t, ws); code != closePolicy {
		t.Fatalf("close code %d, want %d", code, closePolicy)
	}
	if n := pongs.Load(); n > 2*controlBurst {
		t.Fatalf("%d pongs for %d pings, want at most about controlBurst (%d)", n, pings, controlBurst)
	}
	testutil.EventuallyContains(t, logs, `error="websocket: pings and pongs over the limit"`, 5*time.Second)
}

// TestOneByteCloseIsProtocolError: a close frame's body starts with a
// 2-byte code (RFC 6455 section 5.5.1); one byte is answered 1002, on a
// chat and on an asset listener alike, and what the client sent before it
// is still relayed.
func TestOneByteCloseIsProtocolError(t *testing.T) {
	t.Run("chat", func(t *testing.T) {
		dial, h, _ := chatServer(t, time.Minute, hub.Config{})
		ws, other := dial(), dial()
		testutil.Eventually(t, "two clients", 5*time.Second, func() bool { return h.Stats().Clients == 2 })
		// The message and the bad close frame leave in one write.
		if err := ws.WriteMessage(websocket.BinaryMessage, []byte("before\x00")); err != nil {
			t.Fatal(err)
		}
		if err := ws.WriteControl(websocket.CloseMessage, []byte{0x03}, time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if code := closeCode(t, ws); code != closeProtocol {
			t.Fatalf("close code %d, want %d", code, closeProtocol)
		}
		other.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, p, err := other.ReadMessage(); err != nil || string(p) != "before\x00" {
			t.Fatalf("other client read %q, %v; want the message sent before the bad close", p, err)
		}
	})
	t.Run("assets", func(t *testing.T) {
		es := &envoie.Server{Files: envoie.Samples()}
		srv := serve(t, &Stream{Serve: es.ServeConn, Files: &Assets{Files: envoie.Samples()}, PingInterval: time.Minute})
		d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: srv.ca.Pool()}}
		ws, _, err := d.Dial("wss://"+srv.addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		if err := ws.WriteControl(websocket.CloseMessage, []byte{0x03}, time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if code := closeCode(t, ws); code != closeProtocol {
			t.Fatalf("close code %d, want %d", code, closeProtocol)
		}
	})
}

// TestSlowReaderBehindBacklogKept: a WebSocket client that only listens,
// reading slowly through a backlog, gets each keep-alive ping late (behind
// what is buffered) and answers it late; it is alive all along, since it
// takes what is written to it, and is not closed as ping_timeout. It gets
// every message, in order. With small socket buffers on both ends the
// server's writes keep completing as it reads; with the system's on the
// server (it grows its send buffer to megabytes), the whole backlog sits in
// the server's send queue at once and the queue is seen shrinking.
func TestSlowReaderBehindBacklogKept(t *testing.T) {
	t.Run("small buffers", func(t *testing.T) { slowReaderBehindBacklog(t, 32<<10, 32<<10) })
	t.Run("backlog queued", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("the send queue is read on Linux only (SIOCOUTQ)")
		}
		slowReaderBehindBacklog(t, 0, 32<<10)
	})
}

// TestSendQueueThroughWrappers: the send queue is found under the
// connections a WebSocket is reached through, and counts what the client
// has not taken.
func TestSendQueueThroughWrappers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the send queue is read on Linux only (SIOCOUTQ)")
	}
	client, server := testutil.TCPPair(t)
	wrapped := &watchedConn{frameWatch{Conn: &httpConn{Conn: peekconn.New(server)}}}
	tc := tcpConnOf(wrapped)
	if tc == nil {
		t.Fatal("no TCP socket found under the wrappers")
	}
	q := sendQueue(tc)
	if q == nil {
		t.Fatal("no send queue read from the socket")
	}
	server.SetWriteBuffer(64 << 10)
	client.SetReadBuffer(4 << 10)
	// Far more than the client's buffer: most of it stays queued.
	go server.Write(make([]byte, 1<<20))
	testutil.Eventually(t, "bytes queued", 5*time.Second, func() bool { n, ok := q(); return ok && n > 0 })
}

// slowReaderBehindBacklog runs the test with the server's send buffer and
// the client's receive buffer set to the given sizes (0: the system's).
func slowReaderBehindBacklog(t *testing.T, serverBuf, clientBuf int) {
	const (
		interval = 200 * time.Millisecond
		messages = 300
		size     = 4 << 10
	)
	log, logs := testutil.Logger(t, slog.LevelInfo)
	h := hub.New(hub.Config{MaxMessage: 8 << 10, QueueBytes: 64 << 10, WriteTimeout: time.Minute})
	t.Cleanup(func() { h.Close() })
	origins, err := NewOrigins(nil, log)
	if err != nil {
		t.Fatal(err)
	}
	ca := testpki.NewRoot(t, testpki.CAOptions{CommonName: "web test root"})
	leaf := ca.Leaf(t, testpki.LeafOptions{})
	var ln net.Listener = testutil.Listen(t)
	if serverBuf > 0 {
		ln = smallSendBuffers{ln, serverBuf}
	}
	ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}})
	startServer(t, ln, &Chat{Hub: h, Page: NewChatPage(), Origins: origins, MaxMessage: 8 << 10, Logger: log, PingInterval: interval})
	dial := func() *websocket.Conn {
		nd := &net.Dialer{}
		if clientBuf > 0 {
			nd.Control = func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) {
					syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, clientBuf)
				})
			}
		}
		d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, NetDialContext: nd.DialContext}
		ws, _, err := d.Dial("wss://"+ln.Addr().String()+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		return ws
	}
	sender, slow := dial(), dial()
	testutil.Eventually(t, "two clients", 5*time.Second, func() bool { return h.Stats().Clients == 2 })
	frame := func(i int) string {
		head := fmt.Sprintf("%d:", i)
		return head + strings.Repeat("s", size-1-len(head)) + "\x00"
	}
	go func() {
		// The sender reads too, as a browser does, and so answers pings.
		for {
			if _, _, err := sender.ReadMessage(); err != nil {
				return
			}
		}
	}()
	go func() {
		for i := range messages {
			if sender.WriteMessage(websocket.BinaryMessage, []byte(frame(i))) != nil {
				return
			}
		}
	}()
	// About 1.2 MB at some 400 KB/s: many ping intervals, each ping
	// read behind some 100 KB of buffered frames.
	for i := range messages {
		slow.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, p, err := slow.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v\n%s", i, err, logs.String())
		}
		if string(p) != frame(i) {
			t.Fatalf("message %d starts %q", i, p[:min(12, len(p))])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Contains(logs.String(), "ping_timeout") {
		t.Fatalf("a live reader was closed:\n%s", logs.String())
	}
}

// smallSendBuffers sets the send buffer of each accepted connection.
type smallSendBuffers struct {
	net.Listener
	size int
}

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(l.size)
	}
	return c, err
}

// TestValidUTF8Streaming: a text message's payload is checked as UTF-8
// across the reads it arrives in.
func TestValidUTF8Streaming(t *testing.T) {
	tests := []struct {
		name  string
		reads []string
		ok    bool
		open  bool // an incomplete sequence is pending at the end
	}{
		{"ascii", []string{"hello"}, true, false},
		{"cut in a two-byte sequence", []string{"caf\xc3", "\xa9"}, true, false},
		{"cut in a four-byte sequence", []string{"\xf0\x9f", "\x98", "\x80!"}, true, false},
		{"incomplete at the end", []string{"caf\xc3"}, true, true},
		{"bad continuation", []string{"caf\xc3", "("}, false, false},
		{"lone continuation byte", []string{"\x80"}, false, false},
		{"overlong", []string{"\xc0\xaf"}, false, false},
		{"surrogate", []string{"\xed\xa0\x80"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &socket{}
			ok := true
			for _, r := range tt.reads {
				if !s.validUTF8([]byte(r)) {
					ok = false
					break
				}
			}
			if ok != tt.ok || (ok && (s.npart > 0) != tt.open) {
				t.Fatalf("valid %v, pending %d bytes; want valid %v, pending %v", ok, s.npart, tt.ok, tt.open)
			}
		})
	}
}

// TestFramedLen checks that what the hub is told a message takes on the
// wire (hub.Framer) is the frame writeFrames makes of it.
func TestFramedLen(t *testing.T) {
	var tr chatTransport
	for _, n := range []int{0, 1, 125, 126, 0xFFFF, 0x10000, 1 << 20} {
		frame := appendFrameHeader(nil, websocket.BinaryMessage, n)
		if got, want := tr.FramedLen(n), len(frame)+n; got != want {
			t.Errorf("FramedLen(%d) = %d, want %d", n, got, want)
		}
	}
}
