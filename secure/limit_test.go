package secure

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/passerelle/passerelle/internal/ratelog"
	"github.com/passerelle/passerelle/internal/testutil"
)

// dialFrom connects to addr from the given loopback source address, so one
// test can play clients on several addresses (127.0.0.0/8 is all loopback).
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// greeted reads the echo handler's greeting, proving the client is served.
func greeted(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && l == "status unknown\n"
}

// TestPerAddressLimit: with max_conns 100, one address holding its share of
// idle connections cannot shut everyone else out, and the refusal is
// logged.
func TestPerAddressLimit(t *testing.T) {
	ts := startServer(t, ServerConfig{Plain: true, MaxConns: 100}, nil)
	for range 10 { // the default share: a tenth of MaxConns
		if c := dialFrom(t, "127.0.0.1", ts.addr); !greeted(t, c) {
			t.Fatal("a client under the per-address limit was not served")
		}
	}
	hog := dialFrom(t, "127.0.0.1", ts.addr)
	hog.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := io.ReadAll(hog); err != nil || len(got) != 0 {
		t.Fatalf("11th client from one address read %q, %v; want to be closed at once", got, err)
	}
	if other := dialFrom(t, "127.0.0.2", ts.addr); !greeted(t, other) {
		t.Fatal("a client from another address was not served")
	}
	testutil.Eventually(t, "refusal line", 5*time.Second, func() bool { return strings.Contains(ts.logs.String(), "per-address limit") })
	line := logLine(ts.logs.String(), "per-address limit")
	if !matchesLog(line, `level=WARN msg="connection refused: per-address limit reached" remote_addr=127.0.0.1 listen_addr=%s limit=10 reason=per_address`) {
		t.Errorf("log line %s", line)
	}
}

// TestRefusalLogIsRateLimited: a peer refused in a loop writes one line, not
// one per attempt.
func TestRefusalLogIsRateLimited(t *testing.T) {
	ts := startServer(t, ServerConfig{Plain: true, MaxConns: 4, MaxConnsPerAddress: 1}, nil)
	if c := dialFrom(t, "127.0.0.1", ts.addr); !greeted(t, c) {
		t.Fatal("first client not served")
	}
	for range 50 {
		c := dialFrom(t, "127.0.0.1", ts.addr)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.ReadAll(c)
	}
	if n := strings.Count(ts.logs.String(), "per-address limit reached"); n != 1 {
		t.Errorf("%d refusal lines for 50 refusals, want 1 (at most one per %s):\n%s", n, ratelog.DefaultEvery, ts.logs.String())
	}
}

// TestMaxConnsWaitIsLogged: a client that must wait for a slot is not lost,
// and the operator is told the limit was reached.
func TestMaxConnsWaitIsLogged(t *testing.T) {
	release := make(chan struct{})
	ts := startServer(t, ServerConfig{Plain: true, MaxConns: 2}, func(ctx context.Context, c *Conn) {
		io.WriteString(c, "status unknown\n")
		select {
		case <-release:
		case <-ctx.Done():
		}
	})
	a, b := dialFrom(t, "127.0.0.1", ts.addr), dialFrom(t, "127.0.0.2", ts.addr)
	if !greeted(t, a) || !greeted(t, b) {
		t.Fatal("clients under the limit not served")
	}
	third := dialFrom(t, "127.0.0.3", ts.addr)
	testutil.Eventually(t, "limit line", 5*time.Second, func() bool { return strings.Contains(ts.logs.String(), "connection limit reached") })
	line := logLine(ts.logs.String(), "connection limit reached")
	if !matchesLog(line, `level=WARN msg="connection limit reached: new clients wait until a connection ends" listen_addr=%s limit=2 reason=max_conns`) {
		t.Errorf("log line %s", line)
	}
	close(release)
	if !greeted(t, third) {
		t.Fatal("the waiting client was never served")
	}
}

// TestRefusalCountCarried: the refusals held back are counted on the next
// line, once the interval has passed.
func TestRefusalCountCarried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log, logs := testutil.Logger(t, slog.LevelInfo)
		l := NewLimiter(4, 1, log)
		addr := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1}
		release, err := l.admit(t.Context(), addr, "test")
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		for range 51 {
			if _, err := l.admit(t.Context(), addr, "test"); err != ErrTooManyFromAddress {
				t.Fatalf("Admit over the limit: %v", err)
			}
		}
		time.Sleep(ratelog.DefaultEvery)
		l.admit(t.Context(), addr, "test")
		lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
		if len(lines) != 2 || !strings.HasSuffix(lines[1], "reason=per_address suppressed=50") {
			t.Errorf("log:\n%s\nwant two lines, the second ending with reason=per_address suppressed=50", logs.String())
		}
	})
}

func TestLimiterDefaults(t *testing.T) {
	tests := []struct {
		max, per         int
		wantMax, wantPer int
	}{
		{0, 0, DefaultMaxConns, DefaultMaxConnsPerAddress},
		{20, 0, 20, 2},
		{10000, 0, 10000, 1000},
		{1, 0, 1, 1},
		{100, 500, 100, 100},
		{100, 7, 100, 7},
	}
	for _, tt := range tests {
		l := NewLimiter(tt.max, tt.per, nil)
		if l.MaxConns() != tt.wantMax || l.MaxConnsPerAddress() != tt.wantPer {
			t.Errorf("NewLimiter(%d, %d) = %d, %d; want %d, %d", tt.max, tt.per, l.MaxConns(), l.MaxConnsPerAddress(), tt.wantMax, tt.wantPer)
		}
	}
}
