package cluster

import "sync/atomic"

// Stats are a node's counters since Start.
type Stats struct {
	// Connected is whether the node is connected to NATS now.
	Connected bool
	// Degraded is whether the bucket of nicknames and members is out of
	// use now (not set up yet, or no majority of its replicas up).
	Degraded bool
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
	// Rejected counts messages from other nodes this hub refused (past
	// the checks on arrival).
	Rejected uint64
	// Disconnects counts losses of the connection to NATS.
	Disconnects uint64
	// DroppedOnArrival counts chat messages from other nodes refused
	// before delivery, by reason (DropReasons lists them): what no node
	// would send. Never delivered to anyone.
	DroppedOnArrival map[string]uint64
	// RoutesRefused counts servers turned away at the route port for a
	// missing or wrong credential or route certificate (embedded only).
	RoutesRefused uint64
}

// dropReason is why a message from another node is refused on arrival.
type dropReason int

const (
	// dropBadPack: a pack no node makes (no id, more messages or bytes
	// than a pack holds, a tail without its NUL).
	dropBadPack dropReason = iota
	// dropTooLarge: a message over this node's chat.max_message.
	dropTooLarge
	// dropReserved: a message starting with "<passerelle:" (after any
	// byte order marks), which local clients cannot relay.
	dropReserved
	// dropUnknownNode: a pack from a node id that is not a cluster node's.
	dropUnknownNode
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{"bad_pack", "too_large", "reserved_prefix", "unknown_node"}

func (r dropReason) String() string { return dropReasonNames[r] }

// DropReasons are the keys of Stats.DroppedOnArrival, in a fixed order.
func DropReasons() []string { return dropReasonNames[:] }

type counters struct {
	published, received, bufferDropped, rejected, disconnects atomic.Uint64
	// slowDropped holds the drops of subscriptions already gone.
	slowDropped atomic.Uint64
	arrival     [numDropReasons]atomic.Uint64
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	s := Stats{
		Connected:     n.nc.IsConnected(),
		Degraded:      n.Degraded(),
		Published:     n.st.published.Load(),
		Received:      n.st.received.Load(),
		BufferDropped: n.st.bufferDropped.Load(),
		Rejected:      n.st.rejected.Load(),
		Disconnects:   n.st.disconnects.Load(),
		SlowDropped:   n.st.slowDropped.Load(),
	}
	s.DroppedOnArrival = make(map[string]uint64, numDropReasons)
	for r := range numDropReasons {
		s.DroppedOnArrival[r.String()] = n.st.arrival[r].Load()
	}
	if n.natsLog != nil {
		s.RoutesRefused = n.natsLog.refused.Load()
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
