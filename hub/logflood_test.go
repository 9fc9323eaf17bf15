package hub

import (
	"fmt"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
)

// TestConnectLeaveFloodLogBounded: thousands of clients that connect and
// leave at once cost a line per reason and interval, with a count, not a
// line each; the Observer still counts every one.
func TestConnectLeaveFloodLogBounded(t *testing.T) {
	const (
		clients = 3000
		workers = 16
	)
	s := startHub(t, plainNetwork(), Config{})
	start := time.Now()
	testutil.Flood(t, s.addr, clients, workers, nil)
	testutil.EventuallyReport(t, waitTimeout, func() bool { return s.closed(ReasonClientClosed) == clients },
		func() string {
			return fmt.Sprintf("closed as client_closed: %d, want %d", s.closed(ReasonClientClosed), clients)
		})
	testutil.CheckLogBounded(t, s.logs.String(), time.Since(start), 1<<10, `msg="chat client closed"`)
}
