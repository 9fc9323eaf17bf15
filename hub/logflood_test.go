package hub

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/ratelog"
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
	jobs := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range jobs {
				c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				c.Close()
			}
		})
	}
	for range clients {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	testutil.EventuallyReport(t, waitTimeout, func() bool { return s.closed(ReasonClientClosed) == clients },
		func() string {
			return fmt.Sprintf("closed as client_closed: %d, want %d", s.closed(ReasonClientClosed), clients)
		})
	elapsed := time.Since(start)
	got := s.logs.String()
	intervals := 1 + int(elapsed/ratelog.DefaultEvery)
	if most := 1 << 10 * intervals; len(got) > most {
		t.Fatalf("%d bytes of log for %d clients in %v, want at most %d:\n%.2000s", len(got), clients, elapsed, most, got)
	}
	if n := strings.Count(got, `msg="chat client closed"`); n < 1 || n > intervals {
		t.Fatalf("%d close lines in %v, want 1 to %d:\n%s", n, elapsed, intervals, got)
	}
}
