package testutil

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/ratelog"
)

// Flood dials addr n times from workers goroutines at once, hands each
// connection to talk (nil: none), closes it, and returns once every one is
// done. A dial that fails fails the test and stops its worker dialing; it
// still takes its share of the n, so that a flood whose every worker failed
// ends instead of hanging the test.
func Flood(tb testing.TB, addr string, n, workers int, talk func(net.Conn)) {
	tb.Helper()
	jobs := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range jobs {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					tb.Error(err)
					for range jobs {
					}
					return
				}
				if talk != nil {
					talk(c)
				}
				c.Close()
			}
		})
	}
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
}

// CheckLogBounded checks what a flood made a listener log over elapsed
// against internal/ratelog's promise: at most perInterval bytes for each
// ratelog.DefaultEvery begun, and each line of msgs (`msg="..."`) written
// at least once and at most once per interval, whatever the number of
// connections.
func CheckLogBounded(tb testing.TB, log string, elapsed time.Duration, perInterval int, msgs ...string) {
	tb.Helper()
	intervals := 1 + int(elapsed/ratelog.DefaultEvery)
	if most := perInterval * intervals; len(log) > most {
		tb.Fatalf("%d bytes of log in %v, want at most %d:\n%.3000s", len(log), elapsed, most, log)
	}
	for _, msg := range msgs {
		if n := strings.Count(log, msg); n < 1 || n > intervals {
			tb.Errorf("%d lines %s in %v, want 1 to %d:\n%.3000s", n, msg, elapsed, intervals, log)
		}
	}
}
