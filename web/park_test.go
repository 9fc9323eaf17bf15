package web

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/internal/testutil"
)

// parkAfter is the hub's linger in the parking tests: short, so that
// clients park and wake many times in one test.
const parkAfter = 20 * time.Millisecond

const parkWait = 10 * time.Second

// parkListener is a chat listener as serve builds it, with a hub that
// parks quiet clients after parkAfter.
func parkListener(t *testing.T, ping time.Duration) (*chatListener, *testutil.Buffer) {
	t.Helper()
	log, logs := testutil.Logger(t, slog.LevelInfo)
	l := startChatListenerWith(t, hub.Config{ParkAfter: parkAfter, Logger: log}, 100, &Chat{PingInterval: ping, Logger: log})
	return l, logs
}

// dialUpgraded opens a WebSocket whose frames the test writes itself.
func (l *chatListener) dialUpgraded(t *testing.T) net.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", l.addr, &tls.Config{RootCAs: l.pool, ServerName: "localhost", NextProtos: []string{ALPN}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	buf := make([]byte, 0, 512)
	one := make([]byte, 1)
	c.SetReadDeadline(time.Now().Add(parkWait))
	for !strings.HasSuffix(string(buf), "\r\n\r\n") {
		if _, err := c.Read(one); err != nil {
			t.Fatalf("upgrade: %v after %q", err, buf)
		}
		buf = append(buf, one[0])
	}
	c.SetReadDeadline(time.Time{})
	if !strings.HasPrefix(string(buf), "HTTP/1.1 101") {
		t.Fatalf("upgrade answered %q", buf)
	}
	return c
}

// clientFrame is a masked frame as a client sends it.
func clientFrame(op byte, fin bool, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	default:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	}
	mask := []byte{0x11, 0x22, 0x33, 0x44}
	f = append(f, mask...)
	for i, c := range payload {
		f = append(f, c^mask[i%4])
	}
	return f
}

func (l *chatListener) waitParked(t *testing.T, n int) {
	t.Helper()
	testutil.EventuallyReport(t, parkWait, func() bool { return l.hub.Stats().Parked == n },
		func() string { return fmt.Sprintf("%+v, want %d parked", l.hub.Stats(), n) })
}

func readMessage(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(parkWait))
	_, p, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(p)
}

// TestWebSocketParked: quiet WebSocket clients are parked, hold no
// goroutine, and relay as before once they send again: a whole frame, a
// frame cut inside its header and a message in two fragments, each across a
// park.
func TestWebSocketParked(t *testing.T) {
	l, _ := parkListener(t, time.Minute)
	a := l.dialWS(t)
	b := l.dialWS(t)
	raw := l.dialUpgraded(t)
	l.waitParked(t, 3)
	for round := range 3 {
		msg := fmt.Sprintf("round %d\x00", round)
		if err := a.WriteMessage(websocket.BinaryMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if got := readMessage(t, b); got != msg {
			t.Fatalf("b read %q, want %q", got, msg)
		}
		l.waitParked(t, 3)
	}

	frame := clientFrame(websocket.BinaryMessage, true, []byte("cut in its header\x00"))
	raw.Write(frame[:3])
	l.waitParked(t, 3) // parked holding three bytes of a frame header
	raw.Write(frame[3:])
	if got := readMessage(t, b); got != "cut in its header\x00" {
		t.Fatalf("b read %q", got)
	}

	l.waitParked(t, 3)
	raw.Write(clientFrame(websocket.TextMessage, false, []byte("two ")))
	time.Sleep(5 * parkAfter) // a message begun: the reader waits inside it
	raw.Write(clientFrame(0, true, []byte("fragments\x00")))
	if got := readMessage(t, b); got != "two fragments\x00" {
		t.Fatalf("b read %q", got)
	}
	l.waitParked(t, 3)
	// Two messages and a ping in one write: the library reads ahead, and
	// the client parks only once it has handed on all of it.
	burst := append(clientFrame(websocket.BinaryMessage, true, []byte("first\x00")), clientFrame(websocket.PingMessage, true, nil)...)
	raw.Write(append(burst, clientFrame(websocket.BinaryMessage, true, []byte("second\x00"))...))
	for _, want := range []string{"first\x00", "second\x00"} {
		if got := readMessage(t, b); got != want {
			t.Fatalf("b read %q, want %q", got, want)
		}
	}
	l.waitParked(t, 3)
	if n := l.hub.Stats().Clients; n != 3 {
		t.Fatalf("%d clients, want 3", n)
	}
}

// TestWebSocketParkedTimingEdges: messages sent around the moment their
// sender parks are all relayed, in order.
func TestWebSocketParkedTimingEdges(t *testing.T) {
	l, _ := parkListener(t, time.Minute)
	a := l.dialWS(t)
	b := l.dialWS(t)
	l.waitParked(t, 2)
	pauses := []time.Duration{0, 1, 10, 18, 19, 20, 21, 22, 25, 39, 40, 41, 60}
	var want []string
	for i := range 2 * len(pauses) {
		time.Sleep(pauses[i%len(pauses)] * time.Millisecond)
		msg := fmt.Sprintf("m%03d\x00", i)
		if err := a.WriteMessage(websocket.BinaryMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		want = append(want, msg)
	}
	for _, w := range want {
		if got := readMessage(t, b); got != w {
			t.Fatalf("read %q, want %q", got, w)
		}
	}
}

// TestWebSocketParkedKeepAlive: a parked client that answers the server's
// pings stays, its pongs taken while it is parked; its own pings are
// answered; one that answers nothing is closed as ping_timeout and leaves
// the hub, although its reader was parked when the keep-alive gave up.
func TestWebSocketParkedKeepAlive(t *testing.T) {
	const interval = 100 * time.Millisecond
	l, logs := parkListener(t, interval)
	alive := l.dialWS(t)
	var pongs atomic.Int64
	alive.SetPongHandler(func(string) error { pongs.Add(1); return nil })
	got := make(chan string, 4)
	go func() {
		defer close(got)
		for {
			_, p, err := alive.ReadMessage() // answers pings
			if err != nil {
				return
			}
			got <- string(p)
		}
	}()
	l.dialWS(t) // a deaf client: reads nothing, so answers no ping
	l.waitParked(t, 2)
	for range 3 {
		if err := alive.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(parkWait)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * interval)
	}
	testutil.EventuallyContains(t, logs, `reason=ping_timeout`, parkWait)
	testutil.EventuallyReport(t, parkWait, func() bool { return l.hub.Stats().Clients == 1 },
		func() string { return fmt.Sprintf("%+v, want the answering client alone", l.hub.Stats()) })
	if n := pongs.Load(); n < 2 {
		t.Fatalf("%d pongs for 3 pings", n)
	}
	if n := strings.Count(logs.String(), "ping_timeout"); n != 1 {
		t.Fatalf("%d ping timeouts, want 1 (the deaf client); log:\n%s", n, logs.String())
	}
	// The answering client is still there and parks again.
	l.waitParked(t, 1)
	other := l.dialWS(t)
	if err := other.WriteMessage(websocket.BinaryMessage, []byte("still there?\x00")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "still there?\x00" {
			t.Fatalf("read %q", m)
		}
	case <-time.After(parkWait):
		t.Fatal("the answering client got nothing")
	}
}

// TestWebSocketParkedControlFlood: pings without end from a parked client
// are bounded as from any other: closed with 1008.
func TestWebSocketParkedControlFlood(t *testing.T) {
	l, logs := parkListener(t, time.Minute)
	raw := l.dialUpgraded(t)
	l.waitParked(t, 1)
	var flood []byte
	for range 200 {
		flood = append(flood, clientFrame(websocket.PingMessage, true, []byte("p"))...)
	}
	raw.Write(flood)
	testutil.EventuallyContains(t, logs, `error="websocket: pings and pongs over the limit"`, parkWait)
	testutil.EventuallyReport(t, parkWait, func() bool { return l.hub.Stats().Clients == 0 },
		func() string { return fmt.Sprintf("%+v, want none", l.hub.Stats()) })
}

// TestWebSocketParkedShutdown: parked clients get the server's goodbye
// (1001) when the hub shuts down.
func TestWebSocketParkedShutdown(t *testing.T) {
	l, _ := parkListener(t, time.Minute)
	a := l.dialWS(t)
	b := l.dialWS(t)
	l.waitParked(t, 2)
	go l.hub.Close()
	for _, ws := range []*websocket.Conn{a, b} {
		if code := closeCode(t, ws); code != closeGoingAway {
			t.Fatalf("close code %d, want %d", code, closeGoingAway)
		}
	}
}

// TestWebSocketParkedClientCloses: a parked client's close frame, or its
// hanging up, ends it at once.
func TestWebSocketParkedClientCloses(t *testing.T) {
	l, _ := parkListener(t, time.Minute)
	a := l.dialWS(t)
	b := l.dialWS(t)
	l.waitParked(t, 2)
	a.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(closeNormal, ""), time.Now().Add(parkWait))
	b.UnderlyingConn().Close()
	testutil.EventuallyReport(t, parkWait, func() bool { s := l.hub.Stats(); return s.Clients == 0 && s.Parked == 0 },
		func() string { return fmt.Sprintf("%+v, want none", l.hub.Stats()) })
}

// TestFrameWatchMessageEnds: the frame watch counts the data messages
// handed whole and tells whether anything follows the last one, however
// the stream is cut.
func TestFrameWatchMessageEnds(t *testing.T) {
	bin := func(fin bool, p string) []byte { return clientFrame(websocket.BinaryMessage, fin, []byte(p)) }
	cont := func(fin bool, p string) []byte { return clientFrame(0, fin, []byte(p)) }
	ping := clientFrame(websocket.PingMessage, true, []byte("x"))
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	tests := []struct {
		name     string
		stream   []byte
		wantEnds uint64
		wantPast bool
	}{
		{"nothing", nil, 0, false},
		{"one message", bin(true, "a\x00"), 1, false},
		{"an empty message", bin(true, ""), 1, false},
		{"two messages", cat(bin(true, "a"), bin(true, "b")), 2, false},
		{"a message and a ping", cat(bin(true, "a"), ping), 1, true},
		{"a ping and a message", cat(ping, bin(true, "a")), 1, false},
		{"fragments", cat(bin(false, "a"), ping, cont(true, "b")), 1, false},
		{"a fragment", bin(false, "a"), 0, true},
		{"a header begun", cat(bin(true, "a"), bin(true, "b")[:3]), 1, true},
	}
	for _, tt := range tests {
		for _, cut := range []int{1, 2, 5, 1 << 20} {
			t.Run(fmt.Sprintf("%s/reads of %d", tt.name, cut), func(t *testing.T) {
				var w frameWatch
				for p := tt.stream; len(p) > 0; {
					n := min(cut, len(p))
					if _, bad := w.scan(p[:n]); bad {
						t.Fatal("scan reported a bad close frame")
					}
					p = p[n:]
				}
				if w.msgEnds != tt.wantEnds || w.pastMsgEnd != tt.wantPast {
					t.Fatalf("msgEnds %d, pastMsgEnd %v; want %d, %v", w.msgEnds, w.pastMsgEnd, tt.wantEnds, tt.wantPast)
				}
			})
		}
	}
}

// TestSocketPending checks when a socket says that its client's next
// message has begun to come (what the chat's reader keeps its buffer for).
func TestSocketPending(t *testing.T) {
	tests := []struct {
		name string
		fw   *frameWatch
		msgs uint64 // messages the socket read to their end
		want bool
	}{
		{"no frame watch", nil, 0, false},
		{"drained", &frameWatch{msgEnds: 2}, 2, false},
		{"a message handed whole, not read yet", &frameWatch{msgEnds: 3}, 2, true},
		{"a frame begun past the last message", &frameWatch{msgEnds: 2, pastMsgEnd: true}, 2, true},
		{"bytes waited for, not handed on", &frameWatch{msgEnds: 2, pstart: 1, pend: 6}, 2, true},
	}
	for _, tt := range tests {
		s := &socket{fw: tt.fw, msgs: tt.msgs}
		if got := s.Pending(); got != tt.want {
			t.Errorf("%s: Pending() = %v, want %v", tt.name, got, tt.want)
		}
	}
}
