package envoie

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// The rate of the info lines a peer can cause (refusals, aborted transfers,
// timed-out connections, digests kept waiting): a burst of logBurst lines,
// then logPerSecond a second, across one Server. Every connection causes at
// most one such line, since each of them ends it, so what needs bounding is
// a flood of connections.
const (
	logBurst     = 20
	logPerSecond = 5
)

// logLimit is a token bucket for log lines. The lines it holds back are
// counted, and the count goes out with the next line it lets through
// (suppressed=N), so a flood shows in the log as one line with a number.
type logLimit struct {
	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int
}

// allow reports whether a line may be written at now, and how many lines
// were held back since the last one that was.
func (l *logLimit) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.IsZero() {
		l.tokens = logBurst
	} else if elapsed := now.Sub(l.last); elapsed > 0 {
		l.tokens = min(logBurst, l.tokens+elapsed.Seconds()*logPerSecond)
	}
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// logLimited writes an info line a peer caused, within the Server's rate.
func (s *Server) logLimited(log *slog.Logger, msg string, args ...any) {
	ctx := context.Background()
	if !log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	ok, n := s.limit.allow(time.Now())
	if !ok {
		return
	}
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	log.Log(ctx, slog.LevelInfo, msg, args...)
}
