package envoie

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/ratelog"
	"github.com/passerelle/passerelle/internal/testutil"
)

// TestRequestDeadline: a client trickling its request line a byte at a
// time is answered bad_request and closed once RequestTimeout has passed
// since the line began, however steadily the bytes come.
func TestRequestDeadline(t *testing.T) {
	ts := startServer(t, Samples(), func(s *Server) { s.RequestTimeout = 300 * time.Millisecond })
	conn := ts.dial(t)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for _, b := range []byte("ENVOIE blason.png\n") {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := conn.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	// Within the idle timeout (2 minutes) and far from it.
	must(t, conn.SetReadDeadline(time.Now().Add(waitTimeout)))
	start := time.Now()
	_, err := ReadHeader(conn)
	remoteErr(t, err, CodeBadRequest, "request line not complete within 300ms")
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("refused after %v, before the request timeout", d)
	}
	testutil.EventuallyContains(t, ts.logs, `code=bad_request message="request line not complete within 300ms"`, waitTimeout)
}

// TestIdleThenRequest: the wait for a request's first byte is governed by
// IdleTimeout, not RequestTimeout: a client may stay silent between
// requests for longer than a request may take.
func TestIdleThenRequest(t *testing.T) {
	ts := startServer(t, Samples(), func(s *Server) { s.RequestTimeout = 100 * time.Millisecond })
	c := ts.client(t)
	must(t, c.Get(context.Background(), "blason.png", io.Discard, nil))
	time.Sleep(300 * time.Millisecond) // silent for three request timeouts
	must(t, c.Get(context.Background(), "blason.png", io.Discard, nil))
}

// TestAnsweredRequestsLogNothingAtInfo: answered requests log at debug
// level; at info, thousands of pipelined requests write no line.
func TestAnsweredRequestsLogNothingAtInfo(t *testing.T) {
	const n = 2000
	log, logs := testutil.Logger(t, slog.LevelInfo)
	ts := startServer(t, Samples(), func(s *Server) { s.Logger = log })
	conn := ts.dial(t)
	reqs := strings.Repeat("ENVOIE bienvenue.txt\n", n) + "EMPREINTE blason.png\nEMPREINTE blason.png\nLISTE\n"
	go func() { _, _ = io.WriteString(conn, reqs) }()
	for i := range n + 3 {
		size, err := ReadHeader(conn)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if _, err := io.CopyN(io.Discard, conn, size); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
	}
	conn.Close()
	testutil.Eventually(t, "the connection to end", waitTimeout, func() bool { return ts.active.Load() == 0 })
	if s := logs.String(); s != "" {
		t.Fatalf("%d answered requests logged at info:\n%.2000s", n+3, s)
	}
}

// TestRefusalLogRateLimited: a flood of refused connections writes one
// line per interval (internal/ratelog), not one per connection.
func TestRefusalLogRateLimited(t *testing.T) {
	const n = 100
	ts := startServerMode(t, Samples(), nil, modePlain)
	start := time.Now()
	for range n {
		conn := ts.dialPlain(t)
		if _, err := io.WriteString(conn, "ENVOIE absent\n"); err != nil {
			t.Fatal(err)
		}
		_, err := ReadHeader(conn)
		remoteErr(t, err, CodeNotFound, `no such file "absent"`)
		conn.Close()
	}
	elapsed := time.Since(start)
	testutil.Eventually(t, "every connection to end", waitTimeout, func() bool { return ts.active.Load() == 0 })
	lines := strings.Count(ts.logs.String(), `msg="envoie: request refused"`)
	most := 1 + int(elapsed/ratelog.DefaultEvery)
	if lines > most || lines == 0 {
		t.Fatalf("%d refusal lines for %d refused connections in %v, want 1 to %d", lines, n, elapsed, most)
	}
}

// TestCutResponseAborts: a transfer cut short (here a client that stopped
// reading) ends through the connection's Abort, so no TLS close alert
// follows half a record.
func TestCutResponseAborts(t *testing.T) {
	dir := t.TempDir()
	must(t, os.Truncate(writeFile(t, dir, "long.bin", nil), 64<<20))
	ts := startServerMode(t, openDir(t, dir), func(s *Server) { s.WriteTimeout = 200 * time.Millisecond }, modeAbort)
	conn := ts.dial(t)
	if _, err := io.WriteString(conn, "ENVOIE long.bin\n"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the stalled transfer to end", waitTimeout, func() bool { return ts.active.Load() == 0 })
	if n := ts.aborts.Load(); n != 1 {
		t.Fatalf("Abort called %d times, want 1", n)
	}
	// A refusal is a complete answer: it closes normally.
	conn = ts.dial(t)
	if _, err := io.WriteString(conn, "ENVOIE absent\n"); err != nil {
		t.Fatal(err)
	}
	_, err := ReadHeader(conn)
	remoteErr(t, err, CodeNotFound, `no such file "absent"`)
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("after a refusal: %v, want EOF", err)
	}
	if n := ts.aborts.Load(); n != 1 {
		t.Fatalf("Abort called %d times after a refusal, want still 1", n)
	}
}
