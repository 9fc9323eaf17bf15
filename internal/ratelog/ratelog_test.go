package ratelog

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func newTestLogger(every time.Duration) (*Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
	return New(slog.New(h), every), &buf
}

func TestOneLinePerKeyPerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, buf := newTestLogger(10 * time.Second)
		for range 1000 {
			l.Warn("plain_text", "client sent plain text to a TLS port; closing", "listen_addr", "127.0.0.1:1")
		}
		l.Warn("other", "another kind")
		time.Sleep(10 * time.Second)
		l.Warn("plain_text", "client sent plain text to a TLS port; closing", "listen_addr", "127.0.0.1:1")
		want := strings.Join([]string{
			`level=WARN msg="client sent plain text to a TLS port; closing" listen_addr=127.0.0.1:1`,
			`level=WARN msg="another kind"`,
			`level=WARN msg="client sent plain text to a TLS port; closing" listen_addr=127.0.0.1:1 suppressed=999`,
			``,
		}, "\n")
		if got := buf.String(); got != want {
			t.Errorf("log:\n%s\nwant:\n%s", got, want)
		}
	})
}

func TestQuietKeyWritesAtOnceAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, buf := newTestLogger(time.Second)
		if !l.Info("k", "first") {
			t.Fatal("first line held back")
		}
		time.Sleep(time.Second)
		if !l.Info("k", "second") {
			t.Fatal("line after a quiet interval held back")
		}
		if strings.Contains(buf.String(), SuppressedKey) {
			t.Errorf("a count appeared where nothing was held back:\n%s", buf.String())
		}
	})
}

func TestKeysBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, buf := newTestLogger(time.Minute)
		for i := range 3 * maxKeys {
			l.Info(fmt.Sprint("key-", i), "line")
		}
		if len(l.keys) > maxKeys {
			t.Errorf("%d keys remembered, want at most %d", len(l.keys), maxKeys)
		}
		// Once the table is full, new keys share one line per interval.
		if got, want := strings.Count(buf.String(), "\n"), maxKeys+1; got != want {
			t.Errorf("%d lines written, want %d", got, want)
		}
		time.Sleep(time.Minute)
		l.Info("late", "line")
		if len(l.keys) > maxKeys {
			t.Errorf("%d keys remembered after a quiet minute, want at most %d", len(l.keys), maxKeys)
		}
	})
}

func TestDisabledLevelCostsNothing(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	l := New(log, time.Minute)
	if l.Info("k", "hidden") {
		t.Error("a line below the handler's level was reported written")
	}
	if len(l.keys) != 0 {
		t.Error("a line below the handler's level was counted")
	}
	if !l.Warn("k", "shown") {
		t.Error("a warning was held back")
	}
}

func TestNilLoggerDiscards(t *testing.T) {
	l := New(nil, 0)
	if l.every != DefaultEvery {
		t.Errorf("interval %v, want %v", l.every, DefaultEvery)
	}
	l.Warn("k", "nowhere")
}

func TestLogToSharesTheCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, buf := newTestLogger(10 * time.Second)
		conn := func(addr string) *slog.Logger { return l.log.With("remote_addr", addr) }
		for i := range 100 {
			l.LogTo(t.Context(), conn(fmt.Sprint("10.0.0.", i)), slog.LevelInfo, "closed", "client closed")
		}
		time.Sleep(10 * time.Second)
		l.LogTo(t.Context(), conn("10.0.0.200"), slog.LevelInfo, "closed", "client closed")
		want := "level=INFO msg=\"client closed\" remote_addr=10.0.0.0\n" +
			"level=INFO msg=\"client closed\" remote_addr=10.0.0.200 suppressed=99\n"
		if got := buf.String(); got != want {
			t.Errorf("log:\n%s\nwant:\n%s", got, want)
		}
	})
}

// TestLazy: a Lazy makes one Logger on first use, with the log it was
// given then, and keeps its rate for every later caller.
func TestLazy(t *testing.T) {
	var first, second bytes.Buffer
	var z Lazy
	l := z.Get(slog.New(slog.NewTextHandler(&first, nil)))
	if got := z.Get(slog.New(slog.NewTextHandler(&second, nil))); got != l {
		t.Fatal("a second Get made another Logger")
	}
	l.Warn("k", "first line")
	z.Get(nil).Warn("k", "held back")
	if !strings.Contains(first.String(), "first line") || strings.Contains(first.String(), "held back") || second.Len() != 0 {
		t.Fatalf("first log %q, second log %q; want the first line once, in the first log", first.String(), second.String())
	}
}
