package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultEvery is the interval between two lines of one key when New is
// given none: long enough that a flood costs a handful of lines a minute,
// short enough that an operator watching the log sees it go on.
const DefaultEvery = 10 * time.Second

// maxKeys bounds the keys a Logger remembers. Past it, keys whose last
// line is older than the interval and that have nothing held back are
// forgotten; if that is not enough, further keys share one entry.
const maxKeys = 1024

// SuppressedKey is the attribute that counts the lines of a key held back
// since the previous line of that key. It is absent when none were.
const SuppressedKey = "suppressed"

// Logger writes at most one line per key per interval. The zero value is
// not usable; call New. A Logger is safe for concurrent use.
type Logger struct {
	log   *slog.Logger
	every time.Duration

	mu   sync.Mutex
	keys map[string]*entry
	// overflow is the entry that new keys share while maxKeys are
	// remembered.
	overflow entry
}

type entry struct {
	last   time.Time // when the last line of this key was written
	unsaid int       // events held back since then
}

// New returns a Logger writing to log (nil discards) at most one line per
// key every every (zero or less takes DefaultEvery).
func New(log *slog.Logger, every time.Duration) *Logger {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if every <= 0 {
		every = DefaultEvery
	}
	return &Logger{log: log, every: every, keys: make(map[string]*entry)}
}

// Log writes msg with args at level, unless a line of key was written less
// than the interval ago, in which case the event is only counted. A line
// that follows held-back events carries SuppressedKey with their number.
// It reports whether the line was written.
func (l *Logger) Log(ctx context.Context, level slog.Level, key, msg string, args ...any) bool {
	return l.LogTo(ctx, l.log, level, key, msg, args...)
}

// LogTo is Log writing to log instead of the Logger's own, with the same
// counts: a listener's or a connection's logger (one made With its
// attributes) shares the rate of every other line of key. A nil log
// writes to the Logger's own.
func (l *Logger) LogTo(ctx context.Context, log *slog.Logger, level slog.Level, key, msg string, args ...any) bool {
	if log == nil {
		log = l.log
	}
	if !log.Enabled(ctx, level) {
		return false
	}
	n, ok := l.allow(key, time.Now())
	if !ok {
		return false
	}
	if n > 0 {
		args = append(args, SuppressedKey, n)
	}
	log.Log(ctx, level, msg, args...)
	return true
}

// Info is Log at slog.LevelInfo with a background context.
func (l *Logger) Info(key, msg string, args ...any) bool {
	return l.Log(context.Background(), slog.LevelInfo, key, msg, args...)
}

// Warn is Log at slog.LevelWarn with a background context.
func (l *Logger) Warn(key, msg string, args ...any) bool {
	return l.Log(context.Background(), slog.LevelWarn, key, msg, args...)
}

// allow reports whether a line of key may be written at now, and how many
// events of key were held back since the last line.
func (l *Logger) allow(key string, now time.Time) (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[key]
	if e == nil {
		if len(l.keys) >= maxKeys {
			l.forget(now)
		}
		if len(l.keys) >= maxKeys {
			e = &l.overflow
		} else {
			l.keys[key] = &entry{last: now}
			return 0, true
		}
	}
	if !e.last.IsZero() && now.Sub(e.last) < l.every {
		e.unsaid++
		return 0, false
	}
	suppressed, e.unsaid = e.unsaid, 0
	e.last = now
	return suppressed, true
}

// forget drops the keys whose last line is older than the interval and
// that hold nothing back: their next event is written at once either way.
func (l *Logger) forget(now time.Time) {
	for k, e := range l.keys {
		if e.unsaid == 0 && now.Sub(e.last) >= l.every {
			delete(l.keys, k)
		}
	}
}

// Lazy is a Logger made at its first use, for the servers that are
// configured by setting their fields (a Logger field included) and have no
// constructor to make it in. The zero value is ready; a Lazy must not be
// copied after its first use.
type Lazy struct {
	once sync.Once
	l    *Logger
}

// Get returns the Logger, made on the first call with log and the default
// interval; later calls return the same one, whatever log they pass.
func (z *Lazy) Get(log *slog.Logger) *Logger {
	z.once.Do(func() { z.l = New(log, 0) })
	return z.l
}
