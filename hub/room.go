package hub

import "sync"

// room is a set of clients that receive each other's messages. Fan-out holds
// the read lock only while it queues a frame to each member, which never
// blocks; joins and leaves take the write lock, under Hub.mu.
type room struct {
	name    string
	mu      sync.RWMutex
	members []*client // each client knows its index, for O(1) removal
}

// broadcast queues msg to every member but from that has room for it. The
// writers to wake are collected in from.wakes and woken by from.flushWakes,
// once per read from the network rather than once per message
// (nats-server's pending client deliveries): a burst of messages then
// reaches each writer as one batch. The members without room are collected
// in from.full; the reader then waits for them (client.waitFull), after
// the lock is released.
func (r *room) broadcast(from *client, msg []byte) {
	r.mu.RLock()
	for _, m := range r.members {
		if m == from {
			continue
		}
		first, full := m.tryPush(msg)
		if first {
			from.wakes = append(from.wakes, m)
		}
		if full {
			from.full = append(from.full, m)
		}
	}
	from.h.observeRelay(len(msg), len(r.members)-1)
	r.mu.RUnlock()
}

// moveLocked takes c out of its room and puts it into the named one ("" for
// none). Empty rooms other than the default one are forgotten. h.mu must be
// held.
func (h *Hub) moveLocked(c *client, name string) {
	if old := c.room; old != nil {
		if old.name == name {
			return
		}
		old.mu.Lock()
		last := len(old.members) - 1
		moved := old.members[last]
		old.members[c.idx] = moved
		moved.idx = c.idx
		old.members[last] = nil
		old.members = old.members[:last]
		empty := last == 0
		old.mu.Unlock()
		if empty && old.name != DefaultRoom {
			delete(h.rooms, old.name)
		}
		c.room = nil
	}
	if name == "" {
		return
	}
	r := h.rooms[name]
	if r == nil {
		r = &room{name: name}
		h.rooms[name] = r
	}
	r.mu.Lock()
	c.idx = len(r.members)
	r.members = append(r.members, c)
	r.mu.Unlock()
	c.room = r
}
