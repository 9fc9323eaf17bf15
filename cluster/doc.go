// Package cluster spans passerelle's chat rooms over several nodes through
// NATS: a Node is a hub.Link, handed to hub.New in hub.Config.Link.
//
// Start a Node with Start and a Config: either Embedded (this process runs a
// NATS server, and the nodes' servers form a NATS cluster through their
// routes) or NATS (the URLs of an existing NATS system). Close stops it.
//
// What goes through NATS (see relay.go and directory.go):
//   - a room is a subject, "passerelle.NAME.room.ROOM" (ROOM in base64url);
//     a node subscribes while it has members there, and publishes what its
//     local members send there in packs (its node id, then the messages,
//     each ending with its NUL), so a node never delivers its own messages
//     twice and a burst crosses as a few NATS messages;
//   - nicknames and each node's members of each room are keys of a
//     JetStream key-value bucket ("passerelle_NAME"), replicated across the
//     cluster: a nickname is claimed with Create, which only one node can
//     win. Every node rewrites its keys every TTL/3 and the bucket forgets
//     a key TTL after its last write, so a dead node's entries go within
//     TTL (30 seconds by default).
//
// Faults never stop the process: a node cut off from NATS serves its local
// members, keeps what they send for the others in a bounded buffer while it
// reconnects (nats.go's reconnect buffer) and counts what overflows; a
// subscription that falls behind drops and counts (nats.go's pending
// limits). Stats returns the counters.
//
// CertStorage (storage.go) is certmagic's storage and locks on the same
// NATS, for certificates obtained by one node and served by all.
package cluster
