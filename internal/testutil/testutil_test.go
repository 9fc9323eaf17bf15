package testutil

import (
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeTB records a fatal failure instead of ending the real test; like
// testing.T it stops the calling goroutine, so run it on its own goroutine.
type fakeTB struct {
	testing.TB
	msg string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls fn with a fakeTB and returns its failure message ("" if none).
func run(fn func(tb testing.TB)) string {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.msg
}

func TestBufferConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := len(b.String()); got != 800 {
		t.Fatalf("len = %d, want 800", got)
	}
}

func TestLoggerLevel(t *testing.T) {
	log, buf := Logger(t, slog.LevelInfo)
	log.Debug("hidden")
	log.Info("shown", "status", "ok")
	if s := buf.String(); strings.Contains(s, "hidden") || !strings.Contains(s, "msg=shown status=ok") {
		t.Fatalf("log = %q", s)
	}
	log, buf = Logger(t, slog.LevelDebug)
	log.Debug("detail")
	if !strings.Contains(buf.String(), "msg=detail") {
		t.Fatalf("log = %q", buf.String())
	}
}

func TestEventually(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		go func() {
			for range 3 {
				time.Sleep(time.Millisecond)
				n.Add(1)
			}
		}()
		if msg := run(func(tb testing.TB) {
			Eventually(tb, "three ticks", 10*time.Second, func() bool { return n.Load() == 3 })
		}); msg != "" {
			t.Fatalf("failed: %s", msg)
		}

		start := time.Now()
		msg := run(func(tb testing.TB) { Eventually(tb, "never", 30*time.Millisecond, func() bool { return false }) })
		if msg != "timed out after 30ms waiting for never" {
			t.Fatalf("message = %q", msg)
		}
		if d := time.Since(start); d < 30*time.Millisecond {
			t.Fatalf("gave up after %s, before the timeout", d)
		}
	})
}

// A condition that turns true while the last sleep runs still passes: it is
// checked once more after the deadline. The Eventually tests run in a
// synctest bubble: their waits take no real time and cannot be flaky under
// load.
func TestEventuallyLastCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		msg := run(func(tb testing.TB) {
			Eventually(tb, "late", 10*time.Millisecond, func() bool { return time.Since(start) > 10*time.Millisecond })
		})
		if msg != "" {
			t.Fatalf("failed: %s", msg)
		}
	})
}

func TestEventuallyReport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		msg := run(func(tb testing.TB) {
			EventuallyReport(tb, 10*time.Millisecond, func() bool { calls++; return false }, func() string {
				return fmt.Sprintf("still false after %d calls", calls)
			})
		})
		if !strings.HasPrefix(msg, "still false after ") || calls < 2 {
			t.Fatalf("message = %q, calls = %d", msg, calls)
		}
	})
}

func TestEventuallyContains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b Buffer
		b.Write([]byte("level=INFO msg=started\n"))
		go func() {
			time.Sleep(5 * time.Millisecond)
			b.Write([]byte("level=INFO msg=stopped reason=shutdown\n"))
		}()
		if msg := run(func(tb testing.TB) { EventuallyContains(tb, &b, "reason=shutdown", 10*time.Second) }); msg != "" {
			t.Fatalf("failed: %s", msg)
		}
		msg := run(func(tb testing.TB) { EventuallyContains(tb, &b, "reason=error", 10*time.Millisecond) })
		if !strings.Contains(msg, `"reason=error"`) || !strings.Contains(msg, "msg=started") {
			t.Fatalf("message does not show the wanted text and the buffer: %q", msg)
		}
	})
}

func TestWaitGoroutines(t *testing.T) {
	base := runtime.NumGoroutine() + 1 // run's own goroutine
	stop := make(chan struct{})
	go func() { <-stop }()
	// No process runs zero goroutines: this wait fails whatever else runs.
	msg := run(func(tb testing.TB) { WaitGoroutines(tb, 0, 10*time.Millisecond) })
	if !strings.HasPrefix(msg, "goroutines ") || !strings.Contains(msg, "TestWaitGoroutines") {
		t.Fatalf("message lacks the count or the stacks: %.200q", msg)
	}
	close(stop)
	if msg := run(func(tb testing.TB) { WaitGoroutines(tb, base, 10*time.Second) }); msg != "" {
		t.Fatalf("failed: %.200s", msg)
	}
}

func TestOpenFDs(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/fd")
	}
	if n := OpenFDs(t); n < 3 {
		t.Fatalf("OpenFDs = %d, want at least stdin, stdout and stderr", n)
	}
}

// Serve hands every connection to the handler, and wait returns only once
// the loop and the handlers have.
func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var handled atomic.Int32
	wait := Serve(ln, func(c net.Conn) {
		defer c.Close()
		handled.Add(1)
		<-release
	})
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	Eventually(t, "three handlers", 10*time.Second, func() bool { return handled.Load() == 3 })
	ln.Close()
	waited := make(chan struct{})
	go func() { wait(); close(waited) }()
	select {
	case <-waited:
		t.Fatal("wait returned while handlers were running")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	<-waited
}

func TestListenAndClosedAddr(t *testing.T) {
	ln := Listen(t)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial the listener: %v", err)
	}
	c.Close()

	client, server := TCPPair(t)
	if client.RemoteAddr().String() != server.LocalAddr().String() {
		t.Fatalf("TCPPair: client reaches %v, server is %v", client.RemoteAddr(), server.LocalAddr())
	}

	addr := ClosedAddr(t)
	if !addr.IP.IsLoopback() || addr.Port == 0 {
		t.Fatalf("ClosedAddr = %v", addr)
	}
	if c, err := net.Dial("tcp", addr.String()); err == nil {
		c.Close()
		t.Fatalf("dial %v: connected, want refused", addr)
	}
}

// errorTB counts the errors reported to it, from any goroutine.
type errorTB struct {
	testing.TB
	mu   sync.Mutex
	errs int
}

func (e *errorTB) Helper() {}

func (e *errorTB) Error(args ...any) {
	e.mu.Lock()
	e.errs++
	e.mu.Unlock()
}

// TestFloodDialFails: a flood at an address nobody listens on reports the
// failure once per worker and ends, though every worker stopped dialing.
func TestFloodDialFails(t *testing.T) {
	tb := &errorTB{}
	addr := ClosedAddr(t).String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		Flood(tb, addr, 20, 4, nil)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Flood still running 10s after every dial was refused")
	}
	if tb.errs < 1 || tb.errs > 4 {
		t.Fatalf("%d errors, want one per worker that dialed (1 to 4)", tb.errs)
	}
}
