package hub

// Link connects a hub to the other nodes of a cluster (package cluster
// implements it over NATS). A nil Config.Link is a single node: the hub then
// calls nothing and costs nothing more.
//
// Joined, Left, Changed and ReleaseNick are called with the hub's lock
// held, in the order the events happened: they must not block, nor call
// back into the hub. Relay is called on the sender's goroutine, in the
// sender's order. ClaimNick and Members may wait on the network; the hub
// calls them without its lock.
type Link interface {
	// Attach is called once by New with the hub the link feeds: messages
	// from other nodes go in through Hub.Publish, and the link reads this
	// node's members of a room with Hub.LocalMembers.
	Attach(h *Hub)
	// Joined is called when a room gets its first member on this node;
	// Left when it loses its last.
	Joined(room string)
	Left(room string)
	// Changed is called when the members of a room on this node, or their
	// nicknames, change.
	Changed(room string)
	// Relay hands the other nodes a message a member of room sent here. The
	// message ends with its NUL; the link must not keep it past the call
	// unless it copies it.
	Relay(room string, msg []byte)
	// ClaimNick claims the nickname whose comparison key is key, written
	// name, for this node. If a client of another node holds it, it returns
	// that nickname as its holder wrote it and false. An error means the
	// other nodes could not be asked: the hub then lets the claim stand on
	// this node alone.
	ClaimNick(key, name string) (holder string, ok bool, err error)
	// ReleaseNick frees a nickname this node claimed.
	ReleaseNick(key string)
	// Members returns the nicknames and the number of members of room on
	// the other nodes (not this one).
	Members(room string) (names []string, count int, err error)
}
