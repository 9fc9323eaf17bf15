package hub

import (
	"context"
	"net"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/passerelle/passerelle/protocol/policy"
)

// DefaultRoom is the room of every client that has not joined another one.
const DefaultRoom = "default"

// Hub relays XMLSocket frames between the clients of each room. Create it
// with New, hand it connections with ServeConn (one goroutine per
// connection, as a listener's handler does), and stop it with Close.
type Hub struct {
	cfg        Config
	policyResp []byte
	// bufs holds 16 KiB buffers in which a writer coalesces queued frames
	// before a TLS write; held only during a write, so idle clients keep
	// none.
	bufs sync.Pool

	mu      sync.Mutex
	closed  bool
	clients map[*client]struct{}
	rooms   map[string]*room
	nicks   map[string]*client // by PRECIS comparison key (see control.go)
	wg      sync.WaitGroup     // one per registered client

	closes    [numReasons]atomic.Uint64
	delivered atomic.Uint64
}

// New returns a Hub ready to serve connections.
func New(cfg Config) *Hub {
	cfg = cfg.withDefaults()
	h := &Hub{
		cfg:        cfg,
		policyResp: policy.Response(cfg.Policy),
		clients:    make(map[*client]struct{}),
		rooms:      make(map[string]*room),
		nicks:      make(map[string]*client),
	}
	h.bufs.New = func() any {
		b := make([]byte, 0, coalesceSize)
		return &b
	}
	return h
}

// ServeConn relays for one client and returns once the client is gone and
// its connection closed. It closes conn in every case. A *tls.Conn whose
// handshake has not run yet is handshaken first (Config.HandshakeTimeout).
// Cancelling ctx disconnects the client with reason shutdown.
func (h *Hub) ServeConn(ctx context.Context, conn net.Conn) {
	c := newClient(h, conn)
	h.cfg.Logger.Debug("chat client connected", "remote_addr", c.addr)
	if !h.register(c) {
		conn.Close()
		h.logClose(c, ReasonShutdown, nil)
		return
	}
	defer h.wg.Done()
	stop := context.AfterFunc(ctx, func() { c.kill(ReasonShutdown) })
	reason, err := c.run(ctx)
	stop()
	h.unregister(c)
	reason = c.kill(reason) // the first reason recorded wins
	c.waitWriter()
	c.close(reason)
	h.logClose(c, reason, err)
}

// Close disconnects every client with reason shutdown, refuses new ones, and
// returns once every ServeConn has returned. It is safe to call more than
// once.
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
	return nil
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
	h.moveLocked(c, DefaultRoom)
	return true
}

// unregister removes c from its room and frees its nickname.
func (h *Hub) unregister(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, c)
	if c.nickKey != "" && h.nicks[c.nickKey] == c {
		delete(h.nicks, c.nickKey)
	}
	h.moveLocked(c, "")
}

func (h *Hub) logClose(c *client, reason CloseReason, err error) {
	h.closes[reason.index()].Add(1)
	attrs := []any{"remote_addr", c.addr, "reason", string(reason)}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	h.cfg.Logger.Info("chat client closed", attrs...)
}

// Stats is a snapshot of the hub, for monitoring and tests.
type Stats struct {
	// Clients is the number of connected clients.
	Clients int
	// Rooms maps each non-empty room to its number of clients.
	Rooms map[string]int
	// Closed counts disconnections by reason since New.
	Closed map[CloseReason]uint64
	// Delivered counts frames written to receivers (relayed messages and
	// control replies).
	Delivered uint64
}

// Stats returns a snapshot of the hub.
func (h *Hub) Stats() Stats {
	s := Stats{Rooms: make(map[string]int), Closed: make(map[CloseReason]uint64)}
	h.mu.Lock()
	s.Clients = len(h.clients)
	for name, r := range h.rooms {
		if n := r.size(); n > 0 {
			s.Rooms[name] = n
		}
	}
	h.mu.Unlock()
	for i, r := range allReasons() {
		if n := h.closes[i].Load(); n > 0 {
			s.Closed[r] = n
		}
	}
	s.Delivered = h.delivered.Load()
	return s
}

// RoomSize returns the number of clients in the named room.
func (h *Hub) RoomSize(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.rooms[name]; r != nil {
		return r.size()
	}
	return 0
}

// members returns the sorted nicknames in c's room and its size.
func (h *Hub) members(c *client) (string, []string, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := c.room
	if r == nil {
		return "", nil, 0
	}
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
	return r.name, names, n
}
