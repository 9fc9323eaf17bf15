package cluster

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/internal/testutil"
)

// startNATS runs a standalone NATS server with JetStream on port (0: any),
// as an operator's NATS system would be.
func startNATS(t testing.TB, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = server.RANDOM_PORT
	}
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

func natsURL(s *server.Server) string {
	return "nats://" + s.Addr().String()
}

func TestExternalNATSRestarted(t *testing.T) {
	ns := startNATS(t, 0)
	url := natsURL(ns)
	port := ns.Addr().(interface{ String() string }).String()
	port = port[strings.LastIndex(port, ":")+1:]
	cfg := Config{NATS: []string{url}, ReconnectBuffer: 4 << 10}
	b := startNode(t, cfg, hub.Config{})
	log, logs := testutil.Logger(t, slog.LevelWarn)
	cfg.Logger = log
	a := startNode(t, cfg, hub.Config{})
	a1, a2, b1 := a.connect(), a.connect(), b.connect()
	waitInterest(t, []*server.Server{ns}, a.node.subject(hub.DefaultRoom), 2)
	a1.send("across")
	a2.expect("across")
	b1.expect("across")

	// NATS goes away: each node goes on serving its local members, and
	// keeps a bounded buffer for the others, counting what overflows.
	down := time.Now()
	ns.Shutdown()
	testutil.Eventually(t, "node a disconnected", waitTimeout, func() bool { return !a.node.Connected() })
	// What a member sends is packed for the other nodes: a pack leaves
	// relayDelay after its first message, or at once at relayPackBytes.
	// nats.go takes a pack while its buffer holds less than 4 KiB, so it
	// keeps at most 4 KiB plus one pack, however late the timer fires:
	// 100 KiB overflows it.
	big := strings.Repeat("x", 1000)
	const sent = 100
	if sent*len(big) <= 4<<10+2*relayPackBytes {
		t.Fatal("the messages sent fit the buffer")
	}
	for i := range sent {
		a1.send(fmt.Sprintf("local %d %s", i, big))
		a2.expect(fmt.Sprintf("local %d %s", i, big))
	}
	testutil.Eventually(t, "messages dropped from the full reconnect buffer", waitTimeout, func() bool { return a.node.Stats().BufferDropped > 0 })
	if st := a.node.Stats(); st.Disconnects != 1 || st.Connected {
		t.Fatalf("stats while down: %+v", st)
	}
	// Said at once (the line follows the count), then through the
	// rate-limited log, not per drop.
	const full = `msg="cluster reconnect buffer full: messages for the other nodes dropped"`
	testutil.EventuallyContains(t, logs, full, waitTimeout)
	testutil.CheckLogBounded(t, logs.String(), time.Since(down), 2<<10, full)

	// NATS comes back on the same address: both nodes rejoin by
	// themselves.
	p, _ := strconv.Atoi(port)
	ns2 := startNATS(t, p)
	testutil.Eventually(t, "nodes reconnected", waitTimeout, func() bool { return a.node.Connected() && b.node.Connected() })
	waitInterest(t, []*server.Server{ns2}, a.node.subject(hub.DefaultRoom), 2)
	// What was buffered and fitted arrives first at b (if b's
	// subscription was back in time); then new messages flow.
	a1.send("after")
	a2.expect("after")
	for {
		got, err := b1.read(waitTimeout)
		if err != nil {
			t.Fatalf("b waiting for after: %v", err)
		}
		if got == "after" {
			break
		}
		if !strings.HasPrefix(got, "local ") {
			t.Fatalf("b got %q", got)
		}
	}
	b1.send("back")
	a1.expect("back")
	a2.expect("back")
	// The bucket, lost with the memory of the old server, is made again
	// and filled with both nodes' members.
	a1.askUntil(`<passerelle:who/>`, `<passerelle:members room="default" count="3"></passerelle:members>`)
}

func TestSlowSubscriber(t *testing.T) {
	ns := startNATS(t, 0)
	url := natsURL(ns)
	a := startNode(t, Config{NATS: []string{url}}, hub.Config{})
	// b's subscriptions may hold one message: a burst overflows them.
	b := startNode(t, Config{NATS: []string{url}, PendingMsgs: 1, PendingBytes: 1 << 10}, hub.Config{QueueBytes: 64 << 20})
	a1, b1, b2 := a.connect(), b.connect(), b.connect()
	waitInterest(t, []*server.Server{ns}, a.node.subject(hub.DefaultRoom), 2)
	var burst []string
	for i := range 20000 {
		burst = append(burst, fmt.Sprintf("burst %d", i))
	}
	a1.send(burst...)
	testutil.Eventually(t, "drops counted on b", waitTimeout, func() bool { return b.node.Stats().SlowDropped > 0 })

	// b's local room never stalled: its members still talk, and b1 got
	// the burst in order, with gaps.
	b1.send("local on b")
	last := -1
	for {
		got, err := b2.read(waitTimeout)
		if err != nil {
			t.Fatalf("b2: %v", err)
		}
		if got == "local on b" {
			break
		}
		var n int
		if _, err := fmt.Sscanf(got, "burst %d", &n); err != nil || n <= last {
			t.Fatalf("b2 got %q after burst %d", got, last)
		}
		last = n
	}
	if st := b.node.Stats(); st.Received+st.SlowDropped < 1 || st.Received >= 20000 {
		t.Fatalf("b stats: %+v", st)
	}
	t.Logf("b: %+v", b.node.Stats())
}
