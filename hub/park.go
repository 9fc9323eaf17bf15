package hub

import (
	"errors"
	"log/slog"
	"net"

	"github.com/passerelle/passerelle/internal/readiness"
)

// A client that has sent nothing for Config.ParkAfter is parked: the
// goroutine that was reading it returns, with the stack crypto/tls grew in
// it, and the hub's Poller (internal/readiness: one epoll set, no goroutine
// per client) starts a goroutine to read it again once it sends. The first
// time, the connection is detached from the listener's handler
// (secure.Conn.Detach), whose goroutine then returns too; the client's end
// closes it. Nothing else changes: the client stays in its room, what is
// relayed to it is written by its writer as before (a writer runs only
// while there is something to write), and whatever ends a client (a
// shutdown, a write that fails, Close) goes through kill, which wakes a
// parked client's wait (readiness.Wait.Wake) so that it ends as a reader
// blocked in a read would.
//
// The reader learns that the client is quiet from a read deadline
// ParkAfter after it began reading: a read that times out has found nothing
// whole in crypto/tls's buffer, the one layer the Poller cannot see into,
// and the frame reader keeps what part of a message it holds. A deadline
// that passes while messages keep coming is moved on, not parked on, so a
// client is parked after ParkAfter to twice that of silence.

// errParked is run's answer when the client has been quiet for the linger.
var errParked = errors.New("hub: client parked")

// Detacher is implemented by connections whose listener's handler may
// return while the connection lives on (secure.Conn, and peekconn.Conn over
// one): Detach returns what ends the connection, or nil when it cannot be
// detached.
type Detacher interface {
	Detach() (end func())
}

// parkConn is the connection the Poller watches for t, nil when t cannot
// be parked: a byte stream's, or what a Parkable transport names, provided
// it can be detached and its socket reached.
func parkConn(t Transport) net.Conn {
	var c net.Conn
	switch v := t.(type) {
	case *streamTransport:
		c = v.Conn
	case Parkable:
		c = v.ParkConn()
	}
	if c == nil {
		return nil
	}
	if _, ok := c.(Detacher); !ok || !readiness.Watchable(c) {
		return nil
	}
	return c
}

// poller returns the hub's Poller, made on first use; nil where there is
// none (not Linux), or once the hub is closed.
func (h *Hub) poller() *readiness.Poller {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.pollTried && !h.closed {
		h.pollTried = true
		p, err := readiness.NewPoller()
		if err != nil && !errors.Is(err, readiness.ErrUnsupported) {
			h.cfg.Logger.Warn("idle chat clients keep their goroutines", "err", err)
		}
		h.poll = p
	}
	return h.poll
}

// park hands the quiet client to the Poller; it reports false when it
// cannot (the caller then reads on in its goroutine), and clears a.watch
// when it never will. The first time, the connection is detached from the
// listener's handler.
func (a *Admission) park() bool {
	h, c, conn := a.h, a.c, a.watch
	p := h.poller()
	if p == nil {
		a.watch = nil
		return false
	}
	if a.end == nil {
		if a.end = conn.(Detacher).Detach(); a.end == nil {
			a.watch = nil
			return false
		}
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false // the read that follows returns kill's reason
	}
	// Armed under c.mu: resume, which may run at once, waits for parked
	// to be set and counted, and kill sees either no wait or this one.
	w, err := p.Arm(conn, a.resume)
	if err == nil {
		c.parked = w
		h.parked.Add(1)
	}
	c.mu.Unlock()
	if err != nil {
		a.watch = nil
		h.peerLog.LogTo(a.ctx, a.log, slog.LevelWarn, "park_failed",
			"chat client not parked: it keeps a goroutine while idle", "remote_addr", c.addr, "err", err)
		return false
	}
	return true
}

// resume reads the client again once it sent, or once kill woke it
// (Wait.Wake).
func (a *Admission) resume() {
	c := a.c
	c.mu.Lock()
	c.parked = nil
	c.mu.Unlock()
	a.h.parked.Add(-1)
	a.relay()
}
