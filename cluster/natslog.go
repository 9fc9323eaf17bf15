package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/passerelle/passerelle/internal/ratelog"
)

// natsLogger sends the embedded server's log to slog, a level down (its
// errors are mostly routes to nodes not up yet, which it retries; its
// warnings are routine). Its Fatalf only logs: nothing NATS does stops
// passerelle.
//
// Its errors and warnings are lines a peer can cause (a node down, a
// stranger knocking at the route port), so they go through one
// ratelog.Logger: at most one line per kind of line, and per configured
// route, every ratelog.DefaultEvery, with the count held back. A kind is
// nats-server's format string, with the connection's address and id
// taken out: text of the server's code, never of a peer.
type natsLogger struct {
	log    *slog.Logger
	rl     *ratelog.Logger
	server string   // the server's name, on every line
	routes []string // the configured routes' host:port, to key their lines

	// refused counts routes refused for their credential or certificate.
	refused atomic.Uint64
}

func newNATSLogger(log *slog.Logger) *natsLogger {
	return &natsLogger{log: log, rl: ratelog.New(log, ratelog.DefaultEvery)}
}

// connPrefix is what nats-server puts before a connection's lines:
// "127.0.0.1:6222 - rid:5 - ".
var connPrefix = regexp.MustCompile(`^.*? - ([a-z]+):\d+ - `)

// key is the line's kind: the format without its connection prefix, the
// connection's kind, and the configured route the line names, if any.
func (l *natsLogger) key(format, line string) string {
	k := format
	if m := connPrefix.FindStringSubmatch(format); m != nil {
		k = m[1] + " " + format[len(m[0]):]
	}
	for _, r := range l.routes {
		if strings.Contains(line, r) {
			return k + " " + r
		}
	}
	return k
}

// routeRefused tells a route turned away for its credential or its
// certificate, which passerelle words itself.
func routeRefused(line string) bool {
	if !strings.Contains(line, " - rid:") {
		return false
	}
	return strings.Contains(line, "Authentication Error") || strings.Contains(line, "authentication error") ||
		strings.Contains(line, "TLS route handshake error") || strings.Contains(line, "cluster route: peer certificate")
}

func (l *natsLogger) write(level slog.Level, format string, v []any) {
	line := "nats: " + fmt.Sprintf(format, v...)
	if routeRefused(line) {
		l.refused.Add(1)
		l.rl.Warn("route refused", "cluster route refused: a server without this cluster's credential or route certificate tried to join",
			"nats_server", l.server, "detail", line)
		return
	}
	l.rl.Log(context.Background(), level, l.key(format, line), line, "nats_server", l.server)
}

func (l *natsLogger) Noticef(format string, v ...any) {
	l.log.Debug("nats: "+fmt.Sprintf(format, v...), "nats_server", l.server)
}
func (l *natsLogger) Warnf(format string, v ...any)  { l.write(slog.LevelInfo, format, v) }
func (l *natsLogger) Errorf(format string, v ...any) { l.write(slog.LevelWarn, format, v) }
func (l *natsLogger) Fatalf(format string, v ...any) {
	l.log.Error("nats: "+fmt.Sprintf(format, v...), "nats_server", l.server)
}
func (l *natsLogger) Debugf(format string, v ...any) {}
func (l *natsLogger) Tracef(format string, v ...any) {}
