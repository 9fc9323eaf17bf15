package testutil

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
)

// Buffer is an io.Writer that collects what concurrent goroutines write (log
// lines from connection handlers, a command's output) while the test reads
// it. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it is safe to call from any goroutine.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Logger returns a text logger recording records at level and above, and the
// Buffer it writes to. When the test fails, whatever was logged is printed
// with the failure, so a broken test shows what the code under test said.
//
// The level is the caller's choice because it is part of what a test checks:
// a wait for a log line must not be satisfied by a debug record the test did
// not mean to look at.
func Logger(tb testing.TB, level slog.Level) (*slog.Logger, *Buffer) {
	tb.Helper()
	buf := &Buffer{}
	tb.Cleanup(func() {
		if tb.Failed() {
			if s := buf.String(); s != "" {
				tb.Logf("log:\n%s", s)
			}
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: level})), buf
}
