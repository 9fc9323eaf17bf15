package policy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/passerelle/passerelle/internal/peekconn"
	"github.com/passerelle/passerelle/internal/ratelog"
)

// Defaults of a Gate.
const (
	// DefaultWait is how long a silent client may take before it is taken
	// for a client of the service rather than a policy requester.
	DefaultWait = 500 * time.Millisecond
	// DefaultReadTimeout bounds the reading of a request once it has begun.
	DefaultReadTimeout = 5 * time.Second
	// DefaultWriteTimeout bounds the writing of the answer.
	DefaultWriteTimeout = 5 * time.Second
)

// Gate is passerelle's one detection of the policy-file request, run on
// every connection before its service sees it (secure.ServerConfig.Preface).
// Check answers a requester with the policy and a NUL, and hands any other
// client back with the bytes it read replayed, so the service starts from
// the very first byte. A Gate is safe for concurrent use; its zero value
// serves Default() with the default timeouts.
type Gate struct {
	// Policy is the cross-domain-policy document; Default() when nil.
	Policy []byte
	// Wait is how long a client that sends nothing is waited for: a chat
	// client that only listens is not a policy requester. Default
	// DefaultWait.
	Wait time.Duration
	// ReadTimeout bounds the whole request once its first byte came, for
	// a request that trickles in. Default DefaultReadTimeout.
	ReadTimeout time.Duration
	// WriteTimeout bounds the write of the answer. Default
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Logger receives a debug line per policy served and an info line per
	// requester that failed half-way; nil means none.
	Logger *slog.Logger
	// PeerLog, when set, writes those info lines instead, at most one of
	// each kind per interval with the count of the others: a client can
	// cause one per connection. A listener sets it (internal/ratelog, over
	// Logger); nil writes every line to Logger.
	PeerLog *ratelog.Logger
}

// Check reads the first bytes of conn. When they are Request it writes the
// policy and returns (nil, false): the caller closes the connection. When
// they are anything else, or nothing within Wait, it returns a connection
// that replays what was read (a *peekconn.Conn), and true. It returns (nil,
// false) as well when the client left or failed before it could be told
// apart.
//
// Check reads no more than len(Request) bytes, and stops at the first byte
// that differs from Request. It leaves conn without a read deadline when it
// hands it back. Cancelling ctx cuts the wait short, and ctx's deadline
// bounds it.
func (g *Gate) Check(ctx context.Context, conn net.Conn) (net.Conn, bool) {
	pc := peekconn.New(conn)
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	isReq, err := g.sniff(ctx, pc)
	interrupted := !stop()
	log := g.logger()
	prefix := pc.Peeked()
	switch {
	case isReq:
		g.Answer(conn)
		return nil, false
	case interrupted || pastDeadline(ctx):
		// Cancelled, or out of the listener's time for everything before
		// the service: the client is dropped.
		g.info(log, "policy_unfinished", "client did not finish its first message in time; closing", "remote_addr", conn.RemoteAddr().String(),
			"first_bytes", string(prefix))
		return nil, false
	case err != nil:
		if len(prefix) > 0 || !errors.Is(err, io.EOF) {
			g.info(log, "policy_left", "client left before its first message", "remote_addr", conn.RemoteAddr().String(),
				"first_bytes", string(prefix), "error", err.Error())
		}
		return nil, false
	}
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		return nil, false
	}
	return pc, true
}

// IsRequest says whether p, the first bytes of a connection, is the policy
// request (isRequest), or could still become it (maybe).
func IsRequest(p []byte) (isRequest, maybe bool) {
	n := min(len(p), len(Request))
	if string(p[:n]) != Request[:n] {
		return false, false
	}
	return n == len(Request), n < len(Request)
}

// sniff reads until the bytes differ from Request, Request is complete, or
// the client stays silent past Wait (before its first byte) or ReadTimeout
// (after it). Silence is not an error: a client that only listens is not a
// policy requester.
func (g *Gate) sniff(ctx context.Context, conn *peekconn.Conn) (isRequest bool, err error) {
	start := time.Now()
	// ctx's deadline (a listener's handshake deadline) bounds everything.
	bound := func(d time.Time) time.Time {
		if end, ok := ctx.Deadline(); ok && end.Before(d) {
			return end
		}
		return d
	}
	if err := conn.SetReadDeadline(bound(start.Add(orDefault(g.Wait, DefaultWait)))); err != nil {
		return false, err
	}
	// A cancellation that came before the deadline above was set has had
	// its own deadline overwritten: see it here.
	if err := ctx.Err(); err != nil {
		return false, err
	}
	begun := len(conn.Peeked()) > 0
	for {
		if begun {
			isReq, maybe := IsRequest(conn.Peeked())
			if !maybe {
				return isReq, nil // complete, or diverged: an ordinary client
			}
		}
		_, rerr := conn.Fill(len(Request))
		if !begun && len(conn.Peeked()) > 0 {
			begun = true
			// A request has begun: give it until ReadTimeout.
			if err := conn.SetReadDeadline(bound(start.Add(orDefault(g.ReadTimeout, DefaultReadTimeout)))); err != nil {
				return false, err
			}
			if err := ctx.Err(); err != nil {
				return false, err
			}
		}
		if rerr != nil {
			if isReq, _ := IsRequest(conn.Peeked()); isReq {
				return true, nil
			}
			if errors.Is(rerr, os.ErrDeadlineExceeded) {
				return false, nil
			}
			return false, rerr
		}
	}
}

// Answer writes the policy and its NUL to conn, under WriteTimeout: the
// answer to a client whose first message was Request. The caller closes
// conn.
func (g *Gate) Answer(conn net.Conn) {
	log := g.logger()
	doc := g.Policy
	if doc == nil {
		doc = Default()
	}
	conn.SetWriteDeadline(time.Now().Add(orDefault(g.WriteTimeout, DefaultWriteTimeout)))
	if _, err := conn.Write(Response(doc)); err != nil {
		g.info(log, "policy_not_sent", "policy answer not sent", "remote_addr", conn.RemoteAddr().String(), "error", err.Error())
		return
	}
	log.Debug("policy served", "remote_addr", conn.RemoteAddr().String())
}

func pastDeadline(ctx context.Context) bool {
	end, ok := ctx.Deadline()
	return ok && !time.Now().Before(end)
}

// info writes a line a client caused, through PeerLog when set.
func (g *Gate) info(log *slog.Logger, key, msg string, args ...any) {
	if g.PeerLog != nil {
		g.PeerLog.LogTo(context.Background(), log, slog.LevelInfo, key, msg, args...)
		return
	}
	log.Info(msg, args...)
}

func (g *Gate) logger() *slog.Logger {
	if g.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Logger
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
