package hub

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
)

func TestSlowConsumer(t *testing.T) {
	for _, tr := range networks() {
		t.Run(tr.name, func(t *testing.T) { runSlow(t, tr) })
	}
}

func runSlow(t *testing.T, tr network) {
	{
		{
			// The budget counts the bytes not yet written; the sender's
			// window (below) is well within it, so the healthy receiver is
			// never near it. The slow one never reads: once its queue is
			// full the sender waits for it, SlowReceiverTimeout at most.
			s := startHub(t, tr, Config{QueueBytes: 256 << 10, SlowReceiverTimeout: 300 * time.Millisecond, WriteTimeout: time.Minute})
			sender, healthy, slow := s.connect(1), s.connect(2), s.connect(3)
			// The sender keeps going until the slow client is dropped, then
			// sends a last frame; the healthy one must get every frame. The
			// sender stays a few frames ahead of the healthy receiver, so
			// that only the slow one can fall behind.
			payload := strings.Repeat("p", 8<<10)
			var sent atomic.Int64
			credits := make(chan struct{}, 4)
			for range cap(credits) {
				credits <- struct{}{}
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 0; i < 20000; i++ { // 160 MB at most
					if s.closed(ReasonSlowConsumer) > 0 {
						break
					}
					<-credits
					if _, err := sender.conn.Write([]byte(fmt.Sprintf("%d:%s\x00", i, payload))); err != nil {
						return
					}
					sent.Add(1)
				}
				sender.conn.Write([]byte("last\x00"))
			}()
			for i := 0; ; i++ {
				healthy.conn.SetReadDeadline(timeIn(30))
				f, err := healthy.rd.ReadFrame()
				if err != nil {
					t.Fatalf("healthy receiver %s (slow %s) after %d frames: %v\n%s", healthy.conn.LocalAddr(), slow.conn.LocalAddr(), i, err, s.logs.String())
				}
				if string(f) == "last\x00" {
					if int64(i) != sent.Load() {
						t.Fatalf("healthy receiver got %d frames, %d sent", i, sent.Load())
					}
					break
				}
				if want := fmt.Sprintf("%d:", i); !strings.HasPrefix(string(f), want) || len(f) != len(want)+len(payload)+1 {
					t.Fatalf("frame %d starts %q", i, f[:min(20, len(f))])
				}
				select {
				case credits <- struct{}{}:
				default:
				}
			}
			<-done
			s.waitLog("reason=slow_consumer")
			s.waitRoom(DefaultRoom, 2)
			if got := s.closed(ReasonSlowConsumer); got != 1 {
				t.Fatalf("closed for slow_consumer: %d, want 1", got)
			}
			// The slow client is closed; what it finds in its socket ends
			// with whole frames, or is cut, but never turns into garbage
			// under TLS.
			slow.conn.SetReadDeadline(timeIn(10))
			for {
				if _, err := slow.rd.ReadFrame(); err != nil {
					if strings.Contains(err.Error(), "bad record MAC") {
						t.Fatalf("slow client read a corrupt record: %v", err)
					}
					break
				}
			}
		}
	}
}

func TestShutdownClose(t *testing.T) {
	s := startHub(t, tlsNetwork(), Config{})
	a, b := s.connect(1), s.connect(2)
	a.send("hi\x00")
	b.expect("hi\x00")
	s.hub.Close()
	a.expectClosed()
	b.expectClosed()
	s.waitLog("reason=shutdown")
	testutil.EventuallyReport(t, waitTimeout, func() bool { return s.closed(ReasonShutdown) == 2 }, func() string {
		return fmt.Sprintf("closed for shutdown: %d, want 2", s.closed(ReasonShutdown))
	})
	if got := clientCount(s.hub); got != 0 {
		t.Fatalf("%d clients after Close, want 0", got)
	}
	// A closed hub turns newcomers away.
	c := s.tr.dial(t, s.addr)
	defer c.Close()
	c.SetReadDeadline(timeIn(10))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a closed hub", n)
	}
}

func TestShutdownContext(t *testing.T) {
	base := runtime.NumGoroutine()
	tr := tlsNetwork()
	log, logs := testutil.Logger(t, slog.LevelInfo)
	h := New(Config{Logger: log})
	ln := tr.listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	wait := testutil.Serve(ln, func(c net.Conn) { serveHandshaken(ctx, h, c) })
	s := &server{t: t, hub: h, addr: ln.Addr().String(), logs: logs, tr: tr}
	a, b := s.connect(1), s.connect(2)
	a.send("hi\x00")
	b.expect("hi\x00")
	cancel()
	a.expectClosed()
	b.expectClosed()
	s.waitLog("reason=shutdown")
	ln.Close()
	wait()
	a.conn.Close()
	b.conn.Close()
	testutil.WaitGoroutines(t, base, waitTimeout)
}

func TestJoinLeaveLeavesNoGoroutineOrFD(t *testing.T) {
	for _, tr := range networks() {
		t.Run(tr.name, func(t *testing.T) {
			s := startHub(t, tr, Config{})
			keep := s.connect(1)
			base := runtime.NumGoroutine()
			baseFDs := testutil.OpenFDs(t)
			for round := range 3 {
				var cs []*tclient
				for i := range 20 {
					cs = append(cs, s.connect(2+i))
				}
				cs[0].send(`<passerelle:join room="r"/>` + "\x00")
				cs[0].expect(`<passerelle:joined room="r" members="1"/>` + "\x00")
				keep.send(fmt.Sprintf("round %d\x00", round))
				for _, c := range cs[1:] {
					c.expect(fmt.Sprintf("round %d\x00", round))
				}
				for _, c := range cs {
					c.conn.Close()
				}
				s.waitRoom(DefaultRoom, 1)
				s.waitRoom("r", 0)
				testutil.WaitGoroutines(t, base, waitTimeout)
				testutil.EventuallyReport(t, waitTimeout, func() bool { return testutil.OpenFDs(t) <= baseFDs }, func() string {
					return fmt.Sprintf("%d open descriptors, want at most %d", testutil.OpenFDs(t), baseFDs)
				})
			}
			testutil.EventuallyReport(t, waitTimeout, func() bool { return s.closed(ReasonClientClosed) == 60 }, func() string {
				return fmt.Sprintf("closed as client_closed: %d, want 60", s.closed(ReasonClientClosed))
			})
			if c, r := clientCount(s.hub), roomCount(s.hub); c != 1 || r != 1 {
				t.Fatalf("%d clients in %d rooms, want 1 client in 1 room", c, r)
			}
			keep.conn.Close()
			s.hub.Close()
		})
	}
}

func timeIn(seconds int) time.Time { return time.Now().Add(time.Duration(seconds) * time.Second) }

func TestReaderKeepingUpWhileBatchInFlight(t *testing.T) {
	// A receiver that reads while a long batch is being written to it is
	// not a slow consumer: the bytes it has read are no longer counted
	// against its budget, though the batch's write has not returned yet.
	// Small socket buffers on both ends keep most of the batch in the hub.
	const kib = 1 << 10
	small := plainNetwork()
	listen := small.listen
	small.listen = func(t testing.TB) net.Listener { return smallBuffers{listen(t)} }
	s := startHub(t, small, Config{QueueBytes: 256 * kib})
	r := s.connect(1)
	if err := r.conn.(*net.TCPConn).SetReadBuffer(8 * kib); err != nil {
		t.Fatal(err)
	}
	c := onlyClient(t, s.hub)
	msgs := make([][]byte, 64+176+96)
	for i := range msgs {
		m := fmt.Sprintf("%d:", i)
		msgs[i] = []byte(m + strings.Repeat("x", kib-1-len(m)) + "\x00")
	}
	publish := func(ms [][]byte) {
		t.Helper()
		if _, err := s.hub.Publish(DefaultRoom, ms...); err != nil {
			t.Fatal(err)
		}
	}
	// 64 KiB the writer takes and blocks on, far more than the socket
	// buffers hold; then 176 KiB queued meanwhile, which the writer takes
	// as one batch once the first is out.
	publish(msgs[:64])
	testutil.EventuallyReport(t, waitTimeout, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.queue) == 0
	}, func() string { return "the writer did not take the first batch" })
	publish(msgs[64:240])
	// The receiver reads 128 KiB: the first batch and 64 KiB of the
	// second, whose write is still going on. 96 KiB more come: 176 + 96
	// would exceed the budget, what is really waiting does not.
	for _, m := range msgs[:128] {
		r.expect(string(m))
	}
	publish(msgs[240:])
	for _, m := range msgs[128:] {
		r.expect(string(m))
	}
	if got := s.closed(ReasonSlowConsumer); got != 0 {
		t.Fatalf("closed for slow_consumer: %d, want 0", got)
	}
}

// smallBuffers gives accepted connections a small send buffer (8 KiB).
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if err := c.(*net.TCPConn).SetWriteBuffer(8 << 10); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// onlyClient returns the hub's one client.
func onlyClient(t *testing.T, h *Hub) *client {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) != 1 {
		t.Fatalf("%d clients, want 1", len(h.clients))
	}
	for c := range h.clients {
		return c
	}
	return nil
}
