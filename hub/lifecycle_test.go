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
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) { runSlow(t, tr) })
	}
}

func runSlow(t *testing.T, tr transport) {
	{
		{
			// The budget counts frames until the writer has accounted for them,
			// so it must exceed the sender's window (below) twice over.
			s := startHub(t, tr, Config{FloodRate: -1, QueueBytes: 256 << 10})
			sender, healthy, slow := s.connect(1), s.connect(2), s.connect(3)
			s.ready() // a client still in its policy wait is not yet draining
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
					if s.hub.Stats().Closed[ReasonSlowConsumer] > 0 {
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
			if got := s.hub.Stats().Closed[ReasonSlowConsumer]; got != 1 {
				t.Fatalf("Closed[slow_consumer] = %d, want 1", got)
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
	s := startHub(t, tlsTransport(), Config{})
	a, b := s.connect(1), s.connect(2)
	a.send("hi\x00")
	b.expect("hi\x00")
	s.hub.Close()
	a.expectClosed()
	b.expectClosed()
	s.waitLog("reason=shutdown")
	if got := s.hub.Stats().Closed[ReasonShutdown]; got != 2 {
		t.Fatalf("Closed[shutdown] = %d, want 2", got)
	}
	if got := s.hub.Stats().Clients; got != 0 {
		t.Fatalf("Clients = %d after Close, want 0", got)
	}
	// A closed hub turns newcomers away (before any TLS handshake).
	c := plainTransport().dial(t, s.addr)
	defer c.Close()
	c.SetReadDeadline(timeIn(10))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a closed hub", n)
	}
}

func TestShutdownContext(t *testing.T) {
	base := runtime.NumGoroutine()
	tr := tlsTransport()
	log, logs := testutil.Logger(t, slog.LevelInfo)
	h := New(Config{Logger: log, PolicyWait: 20 * time.Millisecond})
	ln := tr.listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	wait := testutil.Serve(ln, func(c net.Conn) { h.ServeConn(ctx, c) })
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
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			s := startHub(t, tr, Config{})
			keep := s.connect(1)
			s.ready()
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
			if got := s.hub.Stats(); got.Clients != 1 || len(got.Rooms) != 1 || got.Closed[ReasonClientClosed] != 60 {
				t.Fatalf("stats = %+v, want 1 client in 1 room, 60 client_closed", got)
			}
			keep.conn.Close()
			s.hub.Close()
		})
	}
}

func timeIn(seconds int) time.Time { return time.Now().Add(time.Duration(seconds) * time.Second) }
