package hub

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
)

// TestHeldSenderNotFlood: a sender at half the flood rate in a room where
// a client never reads is held back while that client's queue is full;
// what it sent meanwhile piles up in its socket and arrives at once when
// the dead client is dropped. That burst is not a flood: the sender stays,
// and the live receiver gets every message, in order.
func TestHeldSenderNotFlood(t *testing.T) {
	const (
		messages = 150
		interval = 20 * time.Millisecond // 50 a second, half the rate
	)
	s := startHub(t, plainNetwork(), Config{
		MaxMessage:          128,
		QueueBytes:          256, // two messages: the dead client's queue is full at once
		FloodRate:           100,
		FloodBurst:          10,
		SlowReceiverTimeout: time.Second,
	})
	sender, live := s.connect(1), s.connect(2)
	// A client that never reads, and has no socket buffer to fill first.
	dead, deadEnd := net.Pipe()
	t.Cleanup(func() { dead.Close(); deadEnd.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.hub.ServeConn(ctx, dead) }()
	t.Cleanup(func() { cancel(); <-done })
	s.waitRoom(DefaultRoom, 3)

	frame := func(i int) string { return fmt.Sprintf("%03d:%s\x00", i, strings.Repeat("h", 90)) }
	go func() {
		for i := range messages {
			if _, err := sender.conn.Write([]byte(frame(i))); err != nil {
				return
			}
			time.Sleep(interval)
		}
	}()
	for i := range messages {
		live.expect(frame(i))
	}
	testutil.EventuallyReport(t, waitTimeout, func() bool { return s.closed(ReasonSlowConsumer) == 1 },
		func() string { return fmt.Sprintf("closed as slow_consumer: %d, want 1", s.closed(ReasonSlowConsumer)) })
	if got := s.closed(ReasonFlood); got != 0 {
		t.Fatalf("closed for flood: %d, want 0\n%s", got, s.logs.String())
	}
	sender.send("<passerelle:ping/>\x00")
	sender.expect("<passerelle:pong/>\x00")
}
