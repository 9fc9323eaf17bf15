package testutil

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// WaitGoroutines waits until no more than base goroutines run (base is
// runtime.NumGoroutine() taken before the code under test started), and
// fails with every goroutine's stack if that does not happen within timeout.
// Handlers end asynchronously after a close, hence the wait.
func WaitGoroutines(tb testing.TB, base int, timeout time.Duration) {
	tb.Helper()
	EventuallyReport(tb, timeout, func() bool { return runtime.NumGoroutine() <= base }, func() string {
		buf := make([]byte, 1<<20)
		return fmt.Sprintf("goroutines %d > %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
	})
}

// OpenFDs counts this process's open file descriptors. It reads
// /proc/self/fd, so it works on Linux only and fails the test elsewhere.
func OpenFDs(tb testing.TB) int {
	tb.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatalf("counting descriptors: %v", err)
	}
	return len(ents)
}
