package cluster

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/passerelle/passerelle/internal/ratelog"
	"github.com/passerelle/passerelle/internal/testutil"
)

// TestNATSLogRateLimited: the embedded server's errors are written at most
// once per ratelog interval per kind of line and per configured route,
// with the count of those held back; a connection's address and id do not
// make a new kind.
func TestNATSLogRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logger, logs := testutil.Logger(t, slog.LevelInfo)
		l := newNATSLogger(logger)
		l.routes = []string{"127.0.0.1:7001", "127.0.0.1:7002"}
		const connErr = "Error trying to connect to route (attempt %v): %v"
		for i := range 40 { // four a second for ten seconds
			l.Errorf(connErr, i+1, "dial tcp 127.0.0.1:7001: connect: connection refused")
			l.Errorf(connErr, i+1, "dial tcp 127.0.0.1:7002: connect: connection refused")
			l.Errorf(fmt.Sprintf("127.0.0.1:%d - rid:%d - ", 40000+i, i)+"Router connection closed: %s", "Stale Connection")
			time.Sleep(ratelog.DefaultEvery / 40)
		}
		l.Errorf(connErr, 41, "dial tcp 127.0.0.1:7001: connect: connection refused")
		for _, want := range []struct {
			line  string
			count int
		}{
			{`level=WARN msg="nats: Error trying to connect to route (attempt 1): dial tcp 127.0.0.1:7001: connect: connection refused"`, 1},
			{`level=WARN msg="nats: Error trying to connect to route (attempt 1): dial tcp 127.0.0.1:7002: connect: connection refused"`, 1},
			{`level=WARN msg="nats: Error trying to connect to route (attempt 41): dial tcp 127.0.0.1:7001: connect: connection refused" nats_server="" suppressed=39`, 1},
			{`Router connection closed: Stale Connection`, 1},
			{`msg="nats: `, 4},
		} {
			if n := strings.Count(logs.String(), want.line); n != want.count {
				t.Errorf("%d lines with %s, want %d", n, want.line, want.count)
			}
		}
	})
}

// TestNATSLogDownPeer: a real peer of an embedded cluster goes down and
// stays down. nats-server retries its route, each pooled connection on its
// own and every attempt reported (the route was up once), which wrote
// "Error trying to connect to route" several times a second; with the rate
// limit the node writes one such line for that route in the first 3
// seconds of retries, the others counted for the next.
func TestNATSLogDownPeer(t *testing.T) {
	logger, logs := testutil.Logger(t, slog.LevelInfo)
	// The last node to start finds its routes up: its log has no route
	// error before the peer goes down.
	nodes := startCluster(t, 3, func(i int, cfg *Config) {
		if i == 2 {
			cfg.Logger = logger
		}
	})
	const connErr = `msg="nats: Error trying to connect to route (attempt `
	if strings.Contains(logs.String(), connErr) {
		t.Fatalf("route errors before any node is down:\n%s", logs)
	}
	down := nodes[0].node.cfg.Listen
	nodes[0].kill()
	testutil.EventuallyContains(t, logs, connErr, waitTimeout)
	time.Sleep(3 * time.Second) // nats-server retries meanwhile
	lines := 0
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, connErr) {
			if !strings.Contains(l, down) {
				t.Fatalf("route error for another route than %s's: %s", down, l)
			}
			lines++
		}
	}
	if lines != 1 {
		t.Fatalf("%d lines for the route to %s in 3s, want 1:\n%s", lines, down, logs)
	}
}
