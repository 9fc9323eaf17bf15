package hub

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/protocol/policy"
)

func TestRelayByteForByte(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			s := startHub(t, tr, Config{})
			a, b, c := s.connect(1), s.connect(2), s.connect(3)
			msgs := []string{"hello\x00", "<msg from=\"a\">été ☃</msg>\x00", "\x00", strings.Repeat("x", 40000) + "\x00"}
			a.send(strings.Join(msgs, ""))
			b.expect(msgs...)
			c.expect(msgs...)
			b.send("from b\x00")
			a.expect("from b\x00")
			c.expect("from b\x00")
			// a got only b's frame: its own came not back.
			c.send("marker\x00")
			a.expect("marker\x00")
			b.expect("marker\x00")
			a.expectNothing()
		})
	}
}

func TestRelaySplitAndCoalesced(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			s := startHub(t, tr, Config{FloodRate: -1})
			a, b := s.connect(1), s.connect(2)
			// One message in many writes: nothing reaches b before its NUL.
			msg := "<split>one message, written byte by byte</split>\x00"
			for i := 0; i < len(msg)-1; i++ {
				a.send(msg[i : i+1])
			}
			a.send("tail-less")
			a.send("\x00" + msg[len(msg)-1:])
			b.expect(msg[:len(msg)-1]+"tail-less\x00", "\x00")
			// Many messages in one write.
			var all []string
			for i := range 500 {
				all = append(all, fmt.Sprintf("m%d\x00", i))
			}
			a.send(strings.Join(all, ""))
			b.expect(all...)
		})
	}
}

func TestRelayOrderPerSender(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			s := startHub(t, tr, Config{FloodRate: -1, QueueBytes: 8 << 20})
			const senders, each = 3, 2000
			cs := make([]*tclient, senders+1)
			for i := range cs {
				cs[i] = s.connect(i + 1)
			}
			s.ready()
			recv := cs[senders]
			var wg sync.WaitGroup
			for i := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var b strings.Builder
					for n := range each {
						fmt.Fprintf(&b, "s%d:%d\x00", i, n)
						if n%100 == 99 { // several writes, several batches
							cs[i].conn.Write([]byte(b.String()))
							b.Reset()
						}
					}
				}()
			}
			next := make([]int, senders)
			for range senders * each {
				f, err := recv.rd.ReadFrame()
				if err != nil {
					t.Fatal(err)
				}
				var i, n int
				if _, err := fmt.Sscanf(string(f), "s%d:%d\x00", &i, &n); err != nil {
					t.Fatalf("frame %q: %v", f, err)
				}
				if n != next[i] {
					t.Fatalf("from sender %d got %d, want %d", i, n, next[i])
				}
				next[i]++
			}
			wg.Wait()
		})
	}
}

func TestPolicyRequest(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			doc := policy.Default(10000)
			s := startHub(t, tr, Config{Policy: doc, PolicyWait: 300 * time.Millisecond})
			a := s.connect(1)
			// The requester is registered at once, and its queue fills while
			// it has not spoken; what it gets is the policy alone.
			p := s.connect(2)
			a.send("chatter before the request\x00")
			testutil.EventuallyReport(t, waitTimeout, func() bool { return s.hub.Stats().Delivered == 0 && queued(s.hub, 1) }, func() string { return "frame not queued" })
			p.send(policy.Request)
			p.expect(string(doc) + "\x00")
			p.expectClosed()
			s.waitLog("reason=policy")
			s.waitRoom(DefaultRoom, 1)
		})
	}
}

// queued reports whether some client has n frames waiting.
func queued(h *Hub, n int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		c.mu.Lock()
		l := len(c.queue)
		c.mu.Unlock()
		if l == n {
			return true
		}
	}
	return false
}

func TestPolicySlowRequest(t *testing.T) {
	// A request that trickles in slower than PolicyWait is still answered,
	// even though the writer had started.
	s := startHub(t, plainTransport(), Config{PolicyWait: 10 * time.Millisecond})
	p := s.connect(1)
	p.send("<policy-file-")
	testutil.EventuallyReport(t, waitTimeout, func() bool { return writerStarted(s.hub) }, func() string { return "writer not started" })
	p.send("request/>\x00")
	p.expect(string(policy.Default()) + "\x00")
	p.expectClosed()
	s.waitLog("reason=policy")
}

func writerStarted(h *Hub) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		c.mu.Lock()
		st := c.started
		c.mu.Unlock()
		if st {
			return true
		}
	}
	return false
}

func TestListenOnlyClientLosesNothing(t *testing.T) {
	// A seed client that only listens: messages sent during its PolicyWait
	// are queued and delivered once the wait is over.
	s := startHub(t, plainTransport(), Config{PolicyWait: 200 * time.Millisecond})
	listener := s.connect(1)
	a := s.connect(2)
	a.send("early 1\x00early 2\x00")
	listener.expect("early 1\x00", "early 2\x00")
}

func TestTooLarge(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			s := startHub(t, tr, Config{MaxMessage: 1024})
			a, b, big := s.connect(1), s.connect(2), s.connect(3)
			big.send("fine\x00")
			a.expect("fine\x00")
			b.expect("fine\x00")
			big.send(strings.Repeat("y", 1024) + "\x00") // 1025 bytes with its NUL
			big.expectClosed()
			s.waitLog("reason=too_large", `error="xmlsocket: frame longer than the maximum of 1024 bytes"`)
			s.waitRoom(DefaultRoom, 2)
			a.send(strings.Repeat("z", 1023) + "\x00") // exactly the maximum
			b.expect(strings.Repeat("z", 1023) + "\x00")
		})
	}
}

func TestFlood(t *testing.T) {
	s := startHub(t, plainTransport(), Config{FloodRate: 10, FloodBurst: 20})
	a, flooder := s.connect(1), s.connect(2)
	flooder.send(strings.Repeat("spam\x00", 100))
	flooder.expectClosed()
	s.waitLog("reason=flood")
	// Up to the burst went through, and a is still served.
	for range 20 {
		a.expect("spam\x00")
	}
	s.waitRoom(DefaultRoom, 1)
	if got := s.hub.Stats().Closed[ReasonFlood]; got != 1 {
		t.Fatalf("Closed[flood] = %d, want 1", got)
	}
}

func TestCloseReasonIndex(t *testing.T) {
	seen := map[CloseReason]bool{}
	for i, r := range allReasons() {
		if r == "" || seen[r] || r.index() != i {
			t.Fatalf("reason %d %q: empty, repeated or misnumbered (index %d)", i, r, r.index())
		}
		seen[r] = true
	}
}

func TestRelayThenControlInOneWrite(t *testing.T) {
	// A relayed frame followed by a control message in the same read: the
	// receiver's writer must be woken before the relay waits for more.
	s := startHub(t, plainTransport(), Config{})
	a, b := s.connect(1), s.connect(2)
	s.ready()
	a.send("for b\x00<passerelle:ping/>\x00")
	b.expect("for b\x00")
	a.expect("<passerelle:pong/>\x00")
}

func TestSilentClientInBusyRoom(t *testing.T) {
	// More than a queue's worth of messages while a listening client is in
	// its policy wait: it starts receiving early instead of being dropped.
	s := startHub(t, plainTransport(), Config{PolicyWait: time.Minute, QueueBytes: 64 << 10, FloodRate: -1})
	a := s.connect(1)
	a.send("<passerelle:ping/>\x00") // a speaks, so its writer runs
	a.expect("<passerelle:pong/>\x00")
	listener := s.connect(2)
	msg := strings.Repeat("m", 1023) + "\x00"
	// 40 KiB at once, more than half the budget, then one frame per frame
	// read, so that the listener is never behind by more than that.
	credits := make(chan struct{}, 40)
	for range cap(credits) {
		credits <- struct{}{}
	}
	go func() {
		for range 256 { // 256 KiB, four times the budget
			<-credits
			a.conn.Write([]byte(msg))
		}
	}()
	for i := range 256 {
		listener.conn.SetReadDeadline(timeIn(10))
		f, err := listener.rd.ReadFrame()
		if err != nil || string(f) != msg {
			t.Fatalf("frame %d: %v\n%s", i, err, s.logs.String())
		}
		credits <- struct{}{}
	}
	if got := s.hub.Stats().Closed; len(got) != 0 {
		t.Fatalf("closed = %v, want none", got)
	}
}
