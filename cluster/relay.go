package cluster

import (
	"bytes"
	"encoding/base64"
	"errors"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/passerelle/passerelle/hub"
)

// idLen is the length of a node id (a NUID), the prefix of every message a
// node publishes.
const idLen = 22

// subject returns the room's subject. Room names may hold '.', NATS's
// token separator, and non-ASCII letters: base64url keeps a room one
// token of plain characters.
func (n *Node) subject(room string) string {
	return n.prefix + base64.RawURLEncoding.EncodeToString([]byte(room))
}

// Joined implements hub.Link: subscribe to the room's subject. It does not
// wait for the server: a subscription made while the link is down is made
// on reconnection.
func (n *Node) Joined(room string) {
	n.relayMu.Lock()
	defer n.relayMu.Unlock()
	if n.subs[room] != nil {
		return
	}
	// The callback runs on the subscription's own goroutine, one message
	// at a time; messages are handed to the hub in batches of what is
	// already waiting, so each local receiver's writer is woken once per
	// batch rather than once per message (as the hub does for a local
	// sender's burst).
	var batch [][]byte
	var sub *nats.Subscription
	sub, err := n.nc.Subscribe(n.subject(room), func(m *nats.Msg) {
		batch = n.accept(batch, m)
		// Pending counts the message being delivered until the callback
		// returns: more than one means more are waiting.
		if pending, _, _ := sub.Pending(); pending > 1 && len(batch) < maxBatch {
			return
		}
		n.deliver(room, batch)
		clear(batch)
		batch = batch[:0]
	})
	if err != nil {
		n.log.Warn("cluster subscribe failed: the room's messages from other nodes are not received", "room", room, "error", err.Error())
		return
	}
	if err := sub.SetPendingLimits(n.cfg.PendingMsgs, n.cfg.PendingBytes); err != nil {
		n.log.Warn("cluster subscription limits not set", "room", room, "error", err.Error())
	}
	n.subs[room] = sub
}

// Left implements hub.Link: unsubscribe from the room's subject.
func (n *Node) Left(room string) {
	n.relayMu.Lock()
	defer n.relayMu.Unlock()
	sub := n.subs[room]
	if sub == nil {
		return
	}
	delete(n.subs, room)
	if d, err := sub.Dropped(); err == nil {
		n.st.slowDropped.Add(uint64(d))
	}
	if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		n.log.Debug("cluster unsubscribe failed", "room", room, "error", err.Error())
	}
}

// Messages for the other nodes are packed: a NATS message is the node id
// followed by one or more chat messages, each ending with its NUL (which
// chat messages hold nowhere else), so the receiving node splits them
// again with no other framing. A room's pack is published when it reaches
// relayPackBytes, or relayDelay after its first message: a burst from a
// sender crosses as a few NATS messages and reaches each receiver on the
// other nodes as a few writes, as it does here, for at most relayDelay
// more latency.
const (
	relayPackBytes = 32 << 10
	relayDelay     = 200 * time.Microsecond
)

// outPack is a room's messages waiting to be published.
type outPack struct {
	buf []byte // the node id, then the messages
	n   int
}

// Relay implements hub.Link: pack msg for the room's subject. One node
// publishes a room's packs in the order its members sent, over one
// connection, and NATS keeps a publisher's order to each subscriber, so the
// sender's order holds on every node. While the link is down nats.go keeps
// what is published in its reconnect buffer; when that is full the
// messages are dropped and counted.
func (n *Node) Relay(room string, msg []byte) {
	n.outMu.Lock()
	p := n.out[room]
	if p == nil {
		p = &outPack{buf: append(make([]byte, 0, 4<<10), n.id...)}
		n.out[room] = p
		time.AfterFunc(relayDelay, func() {
			n.outMu.Lock()
			if n.out[room] == p {
				delete(n.out, room)
			}
			n.publishLocked(room, p)
			n.outMu.Unlock()
		})
	}
	p.buf = append(p.buf, msg...)
	p.n++
	if len(p.buf) >= relayPackBytes || p.n >= maxPackMessages {
		n.publishLocked(room, p)
	}
	n.outMu.Unlock()
}

// flushRelay publishes every pack now (on Close).
func (n *Node) flushRelay() {
	n.outMu.Lock()
	for room, p := range n.out {
		n.publishLocked(room, p)
		delete(n.out, room)
	}
	n.outMu.Unlock()
}

// publishLocked publishes p and empties it; n.outMu is held, so that a
// room's packs leave in order. Until this node's key is in the bucket the
// pack is held instead (nodes.go).
func (n *Node) publishLocked(room string, p *outPack) {
	if p.n == 0 {
		return
	}
	if !n.announced.Load() {
		n.holdLocked(room, p)
		return
	}
	n.publishRawLocked(room, p.buf, p.n)
	p.buf, p.n = p.buf[:idLen], 0
}

// publishRawLocked publishes a pack of count messages; n.outMu is held.
func (n *Node) publishRawLocked(room string, buf []byte, count int) {
	err := n.nc.Publish(n.subject(room), buf) // nats.go copies it
	if err == nil {
		n.st.published.Add(uint64(count))
		return
	}
	n.dropOutLocked(uint64(count), err)
}

// dropOutLocked counts messages for the other nodes that could not be
// published, and says so through the rate-limited log: the first time at
// once, then at most once per kind every ratelog interval.
func (n *Node) dropOutLocked(count uint64, err error) {
	dropped := n.st.bufferDropped.Add(count)
	if errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, errNotAnnounced) {
		n.dropLog.Warn("out buffer", "cluster reconnect buffer full: messages for the other nodes dropped",
			"node_id", n.id, "dropped", dropped, "buffer_bytes", n.cfg.ReconnectBuffer)
		return
	}
	n.dropLog.Warn("out publish", "cluster publish failed: messages for the other nodes dropped",
		"node_id", n.id, "dropped", dropped, "error", err.Error())
}

// maxBatch bounds the messages from other nodes handed to the hub at once.
const maxBatch = 256

// maxPackMessages bounds the chat messages of one pack: a node publishes a
// pack once it holds that many (or relayPackBytes), so a pack with more
// comes from no node.
const maxPackMessages = 1024

// accept appends to batch the chat messages of a NATS message from another
// node, checked as a local client's would be: a pack that no node makes
// (too short, too many messages, too many bytes) is dropped whole; a
// message a local client could not have relayed (over chat.max_message,
// a control message by the hub's rule, no final NUL) is
// dropped alone. Each is counted by its reason, never delivered. It skips
// this node's own pack (were NoEcho not honoured).
func (n *Node) accept(batch [][]byte, m *nats.Msg) [][]byte {
	data := m.Data
	if len(data) <= idLen {
		n.dropped(dropBadPack, 1)
		return batch
	}
	id := string(data[:idLen])
	if id == n.id {
		return batch
	}
	data = data[idLen:]
	count := bytes.Count(data, []byte{0})
	if !n.fromNode(id) {
		n.dropped(dropUnknownNode, max(count, 1))
		return batch
	}
	if count > maxPackMessages || len(data) > relayPackBytes+n.cfg.MaxMessage {
		n.dropped(dropBadPack, max(count, 1))
		return batch
	}
	for len(data) > 0 {
		i := bytes.IndexByte(data, 0)
		if i < 0 {
			n.dropped(dropBadPack, 1)
			break
		}
		msg := data[: i+1 : i+1]
		data = data[i+1:]
		switch {
		case len(msg) > n.cfg.MaxMessage:
			n.dropped(dropTooLarge, 1)
		case hub.IsControl(msg):
			n.dropped(dropReserved, 1)
		default:
			batch = append(batch, msg)
		}
	}
	return batch
}

// dropped counts messages from other nodes refused on arrival, and says
// so in the log, at most once per reason every ratelog interval.
func (n *Node) dropped(r dropReason, count int) {
	n.st.arrival[r].Add(uint64(count))
	n.dropLog.Warn("arrival "+r.String(), "cluster messages from another node dropped on arrival",
		"node_id", n.id, "reason", r.String(), "dropped", count)
}

// deliver hands messages from other nodes to the room's local members.
func (n *Node) deliver(room string, msgs [][]byte) {
	h := n.hub.Load()
	if h == nil || len(msgs) == 0 {
		return
	}
	n.st.received.Add(uint64(len(msgs)))
	if _, err := h.Publish(room, msgs...); err != nil {
		// One bad message refuses the batch: deliver the others alone.
		for _, m := range msgs {
			if _, err := h.Publish(room, m); err != nil {
				n.st.rejected.Add(1)
				n.dropLog.Warn("arrival refused", "cluster message from another node refused",
					"node_id", n.id, "room", room, "error", err.Error())
			}
		}
	}
}
