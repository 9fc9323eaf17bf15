package cluster

import "sync/atomic"

// Stats are a node's counters since Start.
type Stats struct {
	// Connected is whether the node is connected to NATS now.
	Connected bool
	// Published and Received count chat messages sent to and taken from
	// the other nodes.
	Published uint64
	Received  uint64
	// BufferDropped counts messages for the other nodes dropped because
	// the reconnect buffer was full (the link was down).
	BufferDropped uint64
	// SlowDropped counts NATS messages from the other nodes (each a pack
	// of one or more chat messages) that nats.go dropped because a room's
	// subscription fell behind.
	SlowDropped uint64
	// Rejected counts messages from other nodes this hub refused (too
	// large for its chat.max_message, or malformed).
	Rejected uint64
	// Disconnects counts losses of the connection to NATS.
	Disconnects uint64
}

type counters struct {
	published, received, bufferDropped, rejected, disconnects atomic.Uint64
	// slowDropped holds the drops of subscriptions already gone.
	slowDropped atomic.Uint64
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	s := Stats{
		Connected:     n.nc.IsConnected(),
		Published:     n.st.published.Load(),
		Received:      n.st.received.Load(),
		BufferDropped: n.st.bufferDropped.Load(),
		Rejected:      n.st.rejected.Load(),
		Disconnects:   n.st.disconnects.Load(),
		SlowDropped:   n.st.slowDropped.Load(),
	}
	n.relayMu.Lock()
	for _, sub := range n.subs {
		if d, err := sub.Dropped(); err == nil {
			s.SlowDropped += uint64(d)
		}
	}
	n.relayMu.Unlock()
	return s
}
