package hub

// Observer is told what the hub does, for metrics. Its methods are called
// on the relay's hot paths (Relayed once per chat message), so they must
// be quick and must not block; they may be called from many goroutines at
// once. A nil Config.Observer costs nothing.
type Observer interface {
	// Relayed is called for each chat message a client sends to its room
	// (control messages excluded), with its size in bytes, NUL included,
	// and the number of other members it was queued to.
	Relayed(bytes, receivers int)
	// Closed is called once per client the hub served, when it is gone,
	// with the reason also logged (key "reason").
	Closed(reason CloseReason)
}

// Stats is what the hub holds at one moment.
type Stats struct {
	// Clients is the number of clients connected.
	Clients int
	// Rooms is the number of rooms, the default one included.
	Rooms int
	// Parked is the number of clients parked (Config.ParkAfter): quiet,
	// with no goroutine, watched by the hub's Poller.
	Parked int
}

// Stats returns the hub's current counts. It takes the hub's lock briefly,
// so it suits a scrape, not a hot path.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Stats{Clients: len(h.clients), Rooms: len(h.rooms), Parked: int(h.parked.Load())}
}

// observeRelay reports one broadcast to the Observer, if any.
func (h *Hub) observeRelay(bytes, receivers int) {
	if o := h.cfg.Observer; o != nil {
		o.Relayed(bytes, receivers)
	}
}

// observeClose reports a client gone to the Observer, if any.
func (h *Hub) observeClose(reason CloseReason) {
	if o := h.cfg.Observer; o != nil {
		o.Closed(reason)
	}
}
