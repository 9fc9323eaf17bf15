package hub

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
)

// framed is a Transport that is not a byte stream: each message travels in
// a frame of its own, a 4-byte big-endian length then the message, NUL
// included, the way a WebSocket transport carries one message per binary
// frame. It applies no maximum of its own (up to 1 MiB) and passes on
// whatever its peer frames, so the hub's own checks show.
type framed struct {
	net.Conn
}

func (f framed) ReadMessage() ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(f.Conn, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > 1<<20 {
		return nil, fmt.Errorf("framed: %d-byte frame", size)
	}
	msg := make([]byte, size)
	if _, err := io.ReadFull(f.Conn, msg); err != nil {
		return nil, fmt.Errorf("framed: %w", err)
	}
	return msg, nil
}

func (f framed) Buffered() bool { return false }

func (f framed) WriteMessages(msgs [][]byte) (int, error) {
	written := 0
	for _, m := range msgs {
		if err := writeFramed(f.Conn, m); err != nil {
			return written, err
		}
		written += len(m)
	}
	return written, nil
}

func (f framed) Abort() error { return f.Conn.Close() }

func writeFramed(w io.Writer, msg []byte) error {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(msg)))
	_, err := w.Write(append(b, msg...))
	return err
}

func readFramed(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(timeIn(10))
	msg, err := framed{c}.ReadMessage()
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return string(msg)
}

// serveAlso serves s's hub on a second loopback listener, handing each
// connection to handle.
func (s *server) serveAlso(t *testing.T, handle func(context.Context, net.Conn)) string {
	t.Helper()
	ln := testutil.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	wait := testutil.Serve(ln, func(c net.Conn) { handle(ctx, c) })
	t.Cleanup(func() {
		ln.Close()
		s.hub.Close()
		cancel()
		wait()
	})
	return ln.Addr().String()
}

func TestServeOtherTransport(t *testing.T) {
	// A client on a message transport and a client on a byte stream share
	// a room: each message crosses whole, one frame per message on the
	// framed side.
	s := startHub(t, plainNetwork(), Config{MaxMessage: 64})
	addr := s.serveAlso(t, func(ctx context.Context, c net.Conn) { s.hub.Serve(ctx, framed{c}) })
	stream := s.connect(1)
	fc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	s.waitRoom(DefaultRoom, 2)

	stream.send("one\x00two\x00<passerelle:ping/>\x00")
	for _, want := range []string{"one\x00", "two\x00"} {
		if got := readFramed(t, fc); got != want {
			t.Fatalf("framed client read %q, want %q", got, want)
		}
	}
	stream.expect("<passerelle:pong/>\x00")
	for _, m := range []string{"three\x00", "<passerelle:ping/>\x00"} {
		if err := writeFramed(fc, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if got := readFramed(t, fc); got != "<passerelle:pong/>\x00" {
		t.Fatalf("framed client read %q, want the pong", got)
	}
	stream.expect("three\x00")

	// The hub holds any transport to its contract.
	tests := []struct {
		msg    string
		reason CloseReason
		err    string
	}{
		{strings.Repeat("x", 64) + "\x00", ReasonTooLarge, "xmlsocket: frame longer than the maximum of 64 bytes"},
		{"no nul", ReasonReadError, "hub: transport returned a message without its NUL (6 bytes)"},
		{"", ReasonReadError, "hub: transport returned a message without its NUL (0 bytes)"},
	}
	closes := map[CloseReason]int{}
	for _, tt := range tests {
		bad, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		s.waitRoom(DefaultRoom, 3)
		if err := writeFramed(bad, []byte(tt.msg)); err != nil {
			t.Fatal(err)
		}
		closes[tt.reason]++
		testutil.EventuallyReport(t, waitTimeout, func() bool { return s.closed(tt.reason) == closes[tt.reason] },
			func() string {
				return fmt.Sprintf("closed for %s: %d, want %d", tt.reason, s.closed(tt.reason), closes[tt.reason])
			})
		if closes[tt.reason] == 1 {
			// The line of each reason; the next ones within the
			// interval are only counted.
			s.waitLog("reason="+string(tt.reason), fmt.Sprintf("error=%q", tt.err))
		}
		s.waitRoom(DefaultRoom, 2)
		bad.Close()
	}
	stream.send("still relayed\x00")
	if got := readFramed(t, fc); got != "still relayed\x00" {
		t.Fatalf("framed client read %q", got)
	}
}

// identified is a connection as the server layer hands it over: it knows
// the verdict on the client's certificate, and can be aborted. It records
// how the hub ended it.
type identified struct {
	net.Conn
	status          string
	aborted, closed atomic.Bool
}

func (c *identified) PeerStatusWord() string { return c.status }
func (c *identified) Abort() error           { c.aborted.Store(true); return c.Conn.Close() }
func (c *identified) Close() error           { c.closed.Store(true); return c.Conn.Close() }

func TestPeerStatusAndAbort(t *testing.T) {
	s := startHubLevel(t, plainNetwork(), Config{QueueBytes: 64 << 10}, slog.LevelDebug)
	conns := make(chan *identified, 8)
	addr := s.serveAlso(t, func(ctx context.Context, c net.Conn) {
		ic := &identified{Conn: c, status: "trusted"}
		conns <- ic
		s.hub.ServeConn(ctx, ic)
	})
	dial := func() (net.Conn, *identified) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		select {
		case ic := <-conns:
			return c, ic
		case <-time.After(waitTimeout):
			t.Fatal("no connection accepted")
			return nil, nil
		}
	}

	// The verdict is logged when the client comes and when it goes; a
	// client that leaves is closed gracefully.
	c, ic := dial()
	s.waitLog(`msg="chat client connected"`, "remote_addr="+c.LocalAddr().String(), "peer_status=trusted")
	c.Close()
	s.waitLog(`msg="chat client closed"`, "remote_addr="+c.LocalAddr().String(), "reason=client_closed", "peer_status=trusted")
	if ic.aborted.Load() || !ic.closed.Load() {
		t.Fatalf("client_closed: aborted %v, closed %v; want a graceful close", ic.aborted.Load(), ic.closed.Load())
	}

	// A receiver that does not read is aborted, not closed gracefully.
	_, stuck := dial()
	s.waitRoom(DefaultRoom, 1)
	msg := []byte(strings.Repeat("s", 1023) + "\x00")
	for i := 0; s.closed(ReasonSlowConsumer) == 0; i++ {
		if i == 100000 {
			t.Fatal("the receiver that does not read was never dropped")
		}
		s.hub.Publish(DefaultRoom, msg)
	}
	testutil.EventuallyReport(t, waitTimeout, func() bool { return stuck.aborted.Load() }, func() string { return "slow consumer not aborted" })
	if stuck.closed.Load() {
		t.Fatal("slow consumer closed gracefully as well as aborted")
	}
}

// framedBatches is framed that says how long its frames are (Framer) and
// records the wire size of every batch the hub hands it. Its first write
// waits for gate, so that the messages sent meanwhile queue up and the
// batches after it are as large as the hub makes them.
type framedBatches struct {
	framed
	gate    chan struct{}
	waited  atomic.Bool
	largest atomic.Int64 // the wire size of the largest batch of more than one message
	batches atomic.Int64
}

func (f *framedBatches) FramedLen(n int) int { return 4 + n }

func (f *framedBatches) WriteMessages(msgs [][]byte) (int, error) {
	if !f.waited.Swap(true) {
		<-f.gate
	}
	f.batches.Add(1)
	if len(msgs) > 1 {
		wire := 0
		for _, m := range msgs {
			wire += f.FramedLen(len(m))
		}
		if int64(wire) > f.largest.Load() {
			f.largest.Store(int64(wire))
		}
	}
	return f.framed.WriteMessages(msgs)
}

// gatedRoom is a stream client and a framedBatches client in the default
// room of a hub that counts what it relays.
type gatedRoom struct {
	s       *server
	fb      *framedBatches
	fc      net.Conn // the framed client's side
	stream  *tclient
	relayed *relayCount
}

func startGatedRoom(t *testing.T) *gatedRoom {
	t.Helper()
	g := &gatedRoom{fb: &framedBatches{gate: make(chan struct{})}, relayed: &relayCount{}}
	g.s = startHub(t, plainNetwork(), Config{QueueBytes: 1 << 20, Observer: g.relayed})
	addr := g.s.serveAlso(t, func(ctx context.Context, c net.Conn) {
		g.fb.framed = framed{c}
		g.s.hub.Serve(ctx, g.fb)
	})
	g.stream = g.s.connect(1)
	fc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fc.Close() })
	g.fc = fc
	g.s.waitRoom(DefaultRoom, 2)
	return g
}

// burst has the stream client send count messages, msg(i) each, while the
// framed client's first write waits, so that they queue up; then lets the
// writes go and reads every message, in order.
func (g *gatedRoom) burst(t *testing.T, count int, msg func(int) string) {
	t.Helper()
	var b strings.Builder
	for i := range count {
		b.WriteString(msg(i))
	}
	g.stream.send(b.String())
	testutil.EventuallyReport(t, waitTimeout, func() bool { return g.relayed.n.Load() == int64(count) },
		func() string { return fmt.Sprintf("%d messages relayed, want %d", g.relayed.n.Load(), count) })
	close(g.fb.gate)
	for i := range count {
		if got, want := readFramed(t, g.fc), msg(i); got != want {
			t.Fatalf("message %d: read %.12q..., want %.12q...", i, got, want)
		}
	}
}

// relayCount counts the messages the hub relayed.
type relayCount struct{ n atomic.Int64 }

func (r *relayCount) Relayed(int, int)   { r.n.Add(1) }
func (r *relayCount) Closed(CloseReason) {}

// TestFramerBatchesFitARecord checks that the hub hands a transport that
// frames each message (a WebSocket) batches whose frames, not only whose
// messages, fit one TLS record, and that every message still arrives, in
// order.
func TestFramerBatchesFitARecord(t *testing.T) {
	g := startGatedRoom(t)
	// 128-byte messages: 128 of them fill a record, and their frames
	// overflow it.
	g.burst(t, 1000, func(i int) string { return fmt.Sprintf("%0127d\x00", i) })
	if l := g.fb.largest.Load(); l > coalesceSize || l < coalesceSize-132 {
		t.Fatalf("largest batch %d bytes on the wire, want at most %d and within one frame of it (%d batches)", l, coalesceSize, g.fb.batches.Load())
	}
}

// TestWriterQueueMemory checks what a receiver's queues hold after a
// burst: the array a burst grew is kept for the next batches while they
// fill a quarter of it, let go after a batch that fills less, and a writer
// that retires keeps no queue at all.
func TestWriterQueueMemory(t *testing.T) {
	g := startGatedRoom(t)
	var rx *client
	g.s.hub.mu.Lock()
	for c := range g.s.hub.clients {
		if c.t == Transport(g.fb) {
			rx = c
		}
	}
	g.s.hub.mu.Unlock()
	queues := func() (queue, spare int) {
		rx.mu.Lock()
		defer rx.mu.Unlock()
		return cap(rx.queue), cap(rx.spare)
	}

	// A burst of 2,000 messages queues up behind the first write.
	g.burst(t, 2000, func(i int) string { return fmt.Sprintf("%07d\x00", i) })
	testutil.EventuallyReport(t, waitTimeout, func() bool { q, sp := queues(); return max(q, sp) > shrinkQueue },
		func() string {
			q, sp := queues()
			return fmt.Sprintf("after the burst: queue %d, spare %d; want the burst's array (more than %d) kept", q, sp, shrinkQueue)
		})
	// Single messages: the burst's array comes back as the queue, holds
	// one message, and is let go after that batch.
	for i := range 3 {
		msg := fmt.Sprintf("single %d\x00", i)
		g.stream.send(msg)
		if got := readFramed(t, g.fc); got != msg {
			t.Fatalf("read %q, want %q", got, msg)
		}
	}
	testutil.EventuallyReport(t, waitTimeout, func() bool { q, sp := queues(); return max(q, sp) <= shrinkQueue },
		func() string {
			q, sp := queues()
			return fmt.Sprintf("queue %d, spare %d after single messages", q, sp)
		})
	// Quiet: the writer retires and keeps nothing.
	testutil.EventuallyReport(t, waitTimeout, func() bool { q, sp := queues(); return !rx.writing.Load() && q == 0 && sp == 0 },
		func() string {
			q, sp := queues()
			return fmt.Sprintf("writer running %v, queue %d, spare %d once quiet", rx.writing.Load(), q, sp)
		})
}
