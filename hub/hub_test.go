package hub

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestRelayByteForByte(t *testing.T) {
	for _, tr := range networks() {
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
	for _, tr := range networks() {
		t.Run(tr.name, func(t *testing.T) {
			s := startHub(t, tr, Config{})
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
	for _, tr := range networks() {
		t.Run(tr.name, func(t *testing.T) {
			s := startHub(t, tr, Config{QueueBytes: 8 << 20})
			const senders, each = 3, 2000
			cs := make([]*tclient, senders+1)
			for i := range cs {
				cs[i] = s.connect(i + 1)
			}
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

func TestTooLarge(t *testing.T) {
	for _, tr := range networks() {
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
	s := startHub(t, plainNetwork(), Config{FloodRate: 10, FloodBurst: 20})
	a, flooder := s.connect(1), s.connect(2)
	flooder.send(strings.Repeat("spam\x00", 100))
	flooder.expectClosed()
	s.waitLog("reason=flood")
	// Up to the burst went through, and a is still served.
	for range 20 {
		a.expect("spam\x00")
	}
	s.waitRoom(DefaultRoom, 1)
	if got := s.closed(ReasonFlood); got != 1 {
		t.Fatalf("closed for flood: %d, want 1", got)
	}
}

func TestFloodLimitOff(t *testing.T) {
	// The zero Config has no flood limit, and neither has a negative rate:
	// 2,000 messages at once, five times DefaultFloodBurst, all go through.
	for _, rate := range []float64{0, -1} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			s := startHub(t, plainNetwork(), Config{FloodRate: rate})
			a, b := s.connect(1), s.connect(2)
			var all []string
			for i := range 5 * DefaultFloodBurst {
				all = append(all, fmt.Sprintf("m%d\x00", i))
			}
			a.send(strings.Join(all, ""))
			b.expect(all...)
			if got := s.closed(ReasonFlood); got != 0 {
				t.Fatalf("closed for flood: %d, want 0", got)
			}
		})
	}
}

func TestRelayThenControlInOneWrite(t *testing.T) {
	// A relayed frame followed by a control message in the same read: the
	// receiver's writer must be woken before the relay waits for more.
	s := startHub(t, plainNetwork(), Config{})
	a, b := s.connect(1), s.connect(2)
	a.send("for b\x00<passerelle:ping/>\x00")
	b.expect("for b\x00")
	a.expect("<passerelle:pong/>\x00")
}

func TestSilentClientInBusyRoom(t *testing.T) {
	// A client that only listens, in a room that sends it four times its
	// queue budget: it receives from the start (no hold-back), and reading
	// as fast as it can, it is never taken for a slow consumer. The sender
	// stays at most 40 KiB ahead of it, well within the 64 KiB budget.
	s := startHub(t, plainNetwork(), Config{QueueBytes: 64 << 10})
	a := s.connect(1)
	listener := s.connect(2)
	msg := strings.Repeat("m", 1023) + "\x00"
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
	if got := s.logs.String(); strings.Contains(got, "chat client closed") {
		t.Fatalf("a client was closed:\n%s", got)
	}
}
