package hub

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFastSenderSlowedNotDropped sends, as fast as the sender's socket
// takes them, far more than every receiver's queue budget, to receivers
// that read continuously but slower than that (one of them much slower).
// The sender is slowed, not dropped; no receiver is dropped; each gets
// every message, in order.
func TestFastSenderSlowedNotDropped(t *testing.T) {
	for _, tr := range networks() {
		t.Run(tr.name, func(t *testing.T) {
			const (
				messages = 3000
				size     = 512
			)
			// 16 KiB of budget against 1.5 MB sent: without back-pressure
			// every receiver here would be dropped many times over.
			s := startHub(t, tr, Config{MaxMessage: 4 << 10, QueueBytes: 16 << 10})
			sender := s.connect(1)
			receivers := []*tclient{s.connect(2), s.connect(3), s.connect(4)}
			pauses := []time.Duration{0, 0, 200 * time.Microsecond} // the last one reads slowly
			frame := func(i int) string {
				head := fmt.Sprintf("%d:", i)
				return head + strings.Repeat("m", size-1-len(head)) + "\x00"
			}
			sendErr := make(chan error, 1)
			go func() {
				var b strings.Builder
				for i := range messages {
					b.WriteString(frame(i))
					if i%32 == 31 || i == messages-1 {
						if _, err := sender.conn.Write([]byte(b.String())); err != nil {
							sendErr <- err
							return
						}
						b.Reset()
					}
				}
				sendErr <- nil
			}()
			var wg sync.WaitGroup
			errs := make([]error, len(receivers))
			for k, r := range receivers {
				wg.Go(func() {
					for i := range messages {
						r.conn.SetReadDeadline(timeIn(30))
						f, err := r.rd.ReadFrame()
						if err != nil {
							errs[k] = fmt.Errorf("receiver %d, frame %d: %w", k, i, err)
							return
						}
						if want := frame(i); string(f) != want {
							errs[k] = fmt.Errorf("receiver %d, frame %d starts %q, want %q", k, i, f[:min(12, len(f))], want[:12])
							return
						}
						if pauses[k] > 0 && i%8 == 0 {
							time.Sleep(pauses[k])
						}
					}
				})
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatalf("%v\n%s", err, s.logs.String())
				}
			}
			if err := <-sendErr; err != nil {
				t.Fatalf("sender: %v", err)
			}
			// The sender is still there and still relayed.
			sender.send("<passerelle:ping/>\x00")
			sender.expect("<passerelle:pong/>\x00")
			if got := s.logs.String(); strings.Contains(got, "chat client closed") {
				t.Fatalf("a client was closed:\n%s", got)
			}
		})
	}
}

// TestDeadReceiverDroppedOthersKeepReceiving has a receiver that never
// reads among receivers that do, with a sender that never stops. The dead
// one is dropped (slow_consumer) once its queue has been full with no
// write progress for SlowReceiverTimeout, although the write timeout is
// far longer; the others receive every message, in order, before and after
// it goes, and the sender is never dropped.
func TestDeadReceiverDroppedOthersKeepReceiving(t *testing.T) {
	for _, tr := range networks() {
		t.Run(tr.name, func(t *testing.T) {
			const size = 4 << 10
			s := startHub(t, tr, Config{
				MaxMessage:          8 << 10,
				QueueBytes:          32 << 10,
				SlowReceiverTimeout: 200 * time.Millisecond,
				WriteTimeout:        time.Minute,
			})
			sender := s.connect(1)
			live := []*tclient{s.connect(2), s.connect(3)}
			dead := s.connect(4)
			_ = dead // connected, never read
			frame := func(i int) string {
				head := fmt.Sprintf("%d:", i)
				return head + strings.Repeat("d", size-1-len(head)) + "\x00"
			}
			// The sender goes on until the dead receiver is gone, then for
			// as many messages again, then says "last".
			sent := make(chan int, 1)
			go func() {
				n, after := 0, -1
				for after != 0 {
					if _, err := sender.conn.Write([]byte(frame(n))); err != nil {
						sent <- -1
						return
					}
					n++
					switch {
					case after > 0:
						after--
					case after < 0 && s.closed(ReasonSlowConsumer) > 0:
						after = n
					}
				}
				sender.conn.Write([]byte("last\x00"))
				sent <- n
			}()
			var wg sync.WaitGroup
			got := make([]int, len(live))
			errs := make([]error, len(live))
			for k, r := range live {
				wg.Go(func() {
					for i := 0; ; i++ {
						r.conn.SetReadDeadline(timeIn(30))
						f, err := r.rd.ReadFrame()
						if err != nil {
							errs[k] = fmt.Errorf("live receiver %d, frame %d: %w", k, i, err)
							return
						}
						if string(f) == "last\x00" {
							got[k] = i
							return
						}
						if want := frame(i); string(f) != want {
							errs[k] = fmt.Errorf("live receiver %d, frame %d starts %q, want %q", k, i, f[:min(12, len(f))], want[:12])
							return
						}
					}
				})
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatalf("%v\n%s", err, s.logs.String())
				}
			}
			n := <-sent
			for k, g := range got {
				if g != n {
					t.Fatalf("live receiver %d got %d frames, %d sent", k, g, n)
				}
			}
			s.waitRoom(DefaultRoom, 3)
			if got := s.closed(ReasonSlowConsumer); got != 1 {
				t.Fatalf("closed for slow_consumer: %d, want 1\n%s", got, s.logs.String())
			}
			if got := strings.Count(s.logs.String(), "chat client closed"); got != 1 {
				t.Fatalf("%d clients closed, want only the dead receiver:\n%s", got, s.logs.String())
			}
		})
	}
}
