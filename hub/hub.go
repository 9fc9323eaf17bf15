package hub

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/passerelle/passerelle/internal/ratelog"
	"github.com/passerelle/passerelle/internal/readiness"
)

// DefaultRoom is the room of every client that has not joined another one.
const DefaultRoom = "default"

// Hub relays XMLSocket messages between the clients of each room. Create it
// with New, hand it connections with ServeConn (one goroutine per
// connection, as a listener's handler does) or other transports with Serve,
// feed rooms from elsewhere with Publish, and stop it with Close.
type Hub struct {
	cfg Config
	// peerLog writes the per-client lines (chat client closed), one of
	// each reason per interval with the count of the others.
	peerLog *ratelog.Logger
	// bufs holds 16 KiB buffers in which a writer coalesces queued
	// messages before a TLS write; held only during a write, so idle
	// clients keep none.
	bufs sync.Pool

	mu      sync.Mutex
	closed  bool
	clients map[*client]struct{}
	rooms   map[string]*room
	nicks   map[string]*client // by PRECIS comparison key (see control.go)
	wg      sync.WaitGroup     // one per registered client
	// The Poller that holds parked clients (park.go): made by the first
	// client that parks, closed by Close.
	poll      *readiness.Poller
	pollTried bool
	parked    atomic.Int64 // clients parked
}

// New returns a Hub ready to serve connections.
func New(cfg Config) *Hub {
	h := &Hub{
		cfg:     cfg.withDefaults(),
		peerLog: ratelog.New(cfg.Logger, 0),
		clients: make(map[*client]struct{}),
		rooms:   make(map[string]*room),
		nicks:   make(map[string]*client),
	}
	h.bufs.New = func() any {
		b := make([]byte, 0, coalesceSize)
		return &b
	}
	if h.cfg.Link != nil {
		h.cfg.Link.Attach(h)
	}
	return h
}

// ServeConn relays for one byte-stream client (plain TCP, or TLS whose
// handshake is done: the server layer answers Flash policy requests and
// handshakes before it hands a connection over). It returns once the client
// is gone, and closes conn in every case: with Abort if conn is an Aborter
// and the connection must not be closed gracefully, else with Close. If
// conn is a PeerStatusReporter, the verdict on the client's certificate is
// logged. Cancelling ctx disconnects the client with reason shutdown.
func (h *Hub) ServeConn(ctx context.Context, conn net.Conn) {
	h.AdmitConn(ctx, conn).Serve()
}

// AdmitConn makes a byte-stream client a member of the default room at
// once, before anything it sends is looked at: a listener calls it as soon
// as the client's handshake is done and only then reads the client's first
// bytes to tell what it is. What the room relays meanwhile is queued for
// the client (within Config.QueueBytes, as for any member) and written only
// once Admission.Serve runs it as a chat client; Admission.Leave withdraws
// it without a byte written, when it turned out to be something else (an
// HTTP request, a policy request).
func (h *Hub) AdmitConn(ctx context.Context, conn net.Conn) *Admission {
	return h.admit(ctx, newStreamTransport(conn, h.cfg.MaxMessage, h.cfg.ReadBufferSize, &h.bufs))
}

// Serve relays for one client reached through t, as ServeConn does for a
// byte stream: it returns once the client is gone and t is closed (or
// aborted). If t is a PeerStatusReporter, its verdict is logged.
func (h *Hub) Serve(ctx context.Context, t Transport) {
	h.admit(ctx, t).Serve()
}

// Admission is a client the hub holds as a member while its listener tells
// what it is (AdmitConn). Exactly one of Serve and Leave is called, by the
// goroutine that admitted it.
type Admission struct {
	h   *Hub
	c   *client
	ctx context.Context
	in  bool // registered: the hub was not closed

	// Set by Serve: the logger, what stops the shutdown hook, the
	// connection the Poller watches while the client is parked (nil: it
	// is never parked; Config.ParkAfter), and end, once the connection has
	// been detached from its listener's handler (the first time the client
	// was parked).
	log   *slog.Logger
	stop  func() bool
	watch net.Conn
	end   func()
}

func (h *Hub) admit(ctx context.Context, t Transport) *Admission {
	peer := ""
	if p, ok := t.(PeerStatusReporter); ok {
		peer = p.PeerStatusWord()
	}
	c := newClient(h, t, peer)
	c.held = true
	return &Admission{h: h, c: c, ctx: ctx, in: h.register(c)}
}

// Serve runs the admitted client as a chat client: what was queued for it
// is written, then it relays until it is gone, as Hub.Serve. A client that
// goes quiet may be parked (Config.ParkAfter): Serve then returns while the
// client stays, its connection detached from the listener's handler, and
// the client is served from then on by goroutines of the hub's own.
func (a *Admission) Serve() {
	h, c := a.h, a.c
	a.log = h.cfg.Logger
	if l, ok := a.ctx.Value(loggerKey{}).(*slog.Logger); ok {
		a.log = l
	}
	if c.peer != "" {
		a.log.Debug("chat client connected", "remote_addr", c.addr, "peer_status", c.peer)
	} else {
		a.log.Debug("chat client connected", "remote_addr", c.addr)
	}
	if !a.in {
		c.t.Close()
		h.logClose(a.log, c, ReasonShutdown, nil)
		return
	}
	c.release()
	a.stop = context.AfterFunc(a.ctx, func() { c.kill(ReasonShutdown) })
	if h.cfg.ParkAfter > 0 {
		a.watch = parkConn(c.t)
	}
	a.relay()
}

// relay reads the client until it is gone, then ends it, or until it parks
// (see park.go).
func (a *Admission) relay() {
	for {
		linger := time.Duration(0)
		if a.watch != nil {
			linger = a.h.cfg.ParkAfter
		}
		reason, err := a.c.run(linger)
		if err != errParked {
			a.finish(reason, err)
			return
		}
		if a.park() {
			return
		}
		// Not parked: read on in this goroutine, without a linger once
		// the client can never be parked.
	}
}

// finish ends the client: it leaves its room, its writer stops, its
// connection is closed (and, when detached, counted as over) and the close
// is logged.
func (a *Admission) finish(reason CloseReason, err error) {
	h, c := a.h, a.c
	defer h.wg.Done()
	a.stop()
	h.unregister(c)
	reason = c.kill(reason) // the first reason recorded wins
	c.writers.Wait()
	c.close(reason)
	h.logClose(a.log, c, reason, err)
	if a.end != nil {
		a.end()
	}
}

// Leave withdraws the admitted client, which is not a chat client: it
// leaves its room, what was queued for it is dropped, and nothing was or
// will be written to it. Its connection is left open for whoever serves
// it, unless the hub was shut down meanwhile; Leave neither logs nor
// counts it as a chat client closed.
func (a *Admission) Leave() {
	if !a.in {
		return
	}
	a.h.unregister(a.c)
	a.c.withdraw()
	a.c.writers.Wait()
	a.h.wg.Done()
}

type loggerKey struct{}

// WithLogger returns a context under which Serve and ServeConn log to l
// instead of Config.Logger: a server hands each connection the logger of
// its listener, so that one hub's lines still say which listener and
// service a client came through. The close lines are rate-limited per
// logger: hand every connection of a listener the same one, not one made
// for each connection.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// Close disconnects every client with reason shutdown, refuses new ones, and
// returns once every Serve and ServeConn has returned. It is safe to call
// more than once.
func (h *Hub) Close() error {
	h.mu.Lock()
	h.closed = true
	all := make([]*client, 0, len(h.clients))
	for c := range h.clients {
		all = append(all, c)
	}
	h.mu.Unlock()
	for _, c := range all {
		c.kill(ReasonShutdown)
	}
	h.wg.Wait()
	h.mu.Lock()
	p := h.poll
	h.poll = nil
	h.mu.Unlock()
	if p != nil {
		return p.Close()
	}
	return nil
}

// Publish delivers msgs to every member of the named room on this hub, as
// if a client outside the room had sent them: in order, to each member's
// queue under its budget (a member that overflows is dropped with
// slow_consumer), its writer woken once for the lot. It is the way in for
// messages from elsewhere (another node's relay). Each message must end with
// its NUL, hold no other NUL and be at most Config.MaxMessage bytes; if one
// does not, nothing is delivered. The hub keeps the slices and shares them
// between the receivers: the caller must not change them afterwards.
// Publish returns how many members the room has here (those already
// closing are counted but skipped); a room with no member here is not an
// error.
func (h *Hub) Publish(room string, msgs ...[]byte) (int, error) {
	for i, m := range msgs {
		switch {
		case len(m) > h.cfg.MaxMessage:
			return 0, fmt.Errorf("hub: publish to %q: message %d is %d bytes, over the maximum of %d", room, i, len(m), h.cfg.MaxMessage)
		case len(m) == 0 || m[len(m)-1] != 0:
			return 0, fmt.Errorf("hub: publish to %q: message %d does not end with a NUL", room, i)
		case bytes.IndexByte(m, 0) != len(m)-1:
			return 0, fmt.Errorf("hub: publish to %q: message %d holds a NUL before its end", room, i)
		}
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	// The room's read lock is taken before Hub.mu is released (the order
	// moveLocked takes them in), so the room cannot be dropped in between.
	h.mu.Lock()
	r := h.rooms[room]
	if r == nil {
		h.mu.Unlock()
		return 0, nil
	}
	r.mu.RLock()
	h.mu.Unlock()
	defer r.mu.RUnlock()
	for _, m := range r.members {
		wake := false
		for _, msg := range msgs {
			if m.push(msg) {
				wake = true
			}
		}
		if wake {
			m.kick()
		}
	}
	return len(r.members), nil
}

// register adds c to the default room, unless the hub is closed.
func (h *Hub) register(c *client) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.wg.Add(1)
	h.clients[c] = struct{}{}
	h.move(c, DefaultRoom)
	return true
}

// unregister removes c from its room and frees its nickname.
func (h *Hub) unregister(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, c)
	if c.nickKey != "" && h.nicks[c.nickKey] == c {
		delete(h.nicks, c.nickKey)
		if h.cfg.Link != nil {
			h.cfg.Link.ReleaseNick(c.nickKey)
		}
	}
	h.move(c, "")
}

// move is moveLocked, telling the cluster link which rooms this node
// entered and left. h.mu must be held.
func (h *Hub) move(c *client, name string) {
	old := c.room
	h.moveLocked(c, name)
	l := h.cfg.Link
	if l == nil || (old != nil && old.name == name) {
		return
	}
	// Room members change only under h.mu, which is held: their number
	// can be read without the room's lock.
	if old != nil {
		if len(old.members) == 0 {
			l.Left(old.name)
		}
		l.Changed(old.name)
	}
	if c.room != nil {
		if len(c.room.members) == 1 {
			l.Joined(c.room.name)
		}
		l.Changed(c.room.name)
	}
}

// relay hands a message c's room got from c to the other nodes.
func (h *Hub) relay(c *client, msg []byte) {
	if l := h.cfg.Link; l != nil {
		l.Relay(c.room.name, msg)
	}
}

// LocalMembers returns the sorted nicknames of the named room's members on
// this hub (members without one are counted, not named) and their number.
// A cluster link reads it to tell the other nodes.
func (h *Hub) LocalMembers(room string) ([]string, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[room]
	if r == nil {
		return nil, 0
	}
	return r.names()
}

// Rooms returns the names of the rooms that have members on this hub.
func (h *Hub) Rooms() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	names := make([]string, 0, len(h.rooms))
	for name, r := range h.rooms {
		if len(r.members) > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// names returns the room's sorted nicknames and its size. h.mu must be held.
func (r *room) names() ([]string, int) {
	r.mu.RLock()
	var names []string
	for _, m := range r.members {
		if m.nick != "" {
			names = append(names, m.nick)
		}
	}
	n := len(r.members)
	r.mu.RUnlock()
	sort.Strings(names)
	return names, n
}

func (h *Hub) logClose(log *slog.Logger, c *client, reason CloseReason, err error) {
	h.observeClose(reason)
	attrs := []any{"remote_addr", c.addr, "reason", string(reason)}
	if c.peer != "" {
		attrs = append(attrs, "peer_status", c.peer)
	}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	// A client can connect and leave in a loop: the line is rate-limited
	// per reason and per logger, that is per listener (WithLogger), so
	// that a flood on one listener hides nothing of another's (the
	// Observer counts every close).
	key := fmt.Sprintf("chat_closed_%s_%p", reason, log)
	h.peerLog.LogTo(context.Background(), log, slog.LevelInfo, key, "chat client closed", attrs...)
}

// members returns the sorted nicknames in c's room and its size, on every
// node when the hub has a cluster link (this node's alone if the other
// nodes cannot be asked).
func (h *Hub) members(c *client) (string, []string, int) {
	h.mu.Lock()
	r := c.room
	if r == nil {
		h.mu.Unlock()
		return "", nil, 0
	}
	names, n := r.names()
	h.mu.Unlock()
	if h.cfg.Link == nil {
		return r.name, names, n
	}
	more, count, err := h.cfg.Link.Members(r.name)
	if err != nil {
		h.cfg.Logger.Debug("chat members of other nodes unknown", "room", r.name, "error", err.Error())
		return r.name, names, n
	}
	names = append(names, more...)
	sort.Strings(names)
	return r.name, names, n + count
}
