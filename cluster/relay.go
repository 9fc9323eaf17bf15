package cluster

import (
	"bytes"
	"encoding/base64"
	"errors"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
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
	if len(p.buf) >= relayPackBytes {
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
// room's packs leave in order.
func (n *Node) publishLocked(room string, p *outPack) {
	if p.n == 0 {
		return
	}
	count := uint64(p.n)
	err := n.nc.Publish(n.subject(room), p.buf) // nats.go copies it
	p.buf, p.n = p.buf[:idLen], 0
	switch {
	case err == nil:
		n.st.published.Add(count)
	case errors.Is(err, nats.ErrReconnectBufExceeded):
		if n.st.bufferDropped.Add(count) == count || logDue(&n.lastDropLog) {
			n.log.Warn("cluster reconnect buffer full: messages for the other nodes dropped",
				"node_id", n.id, "dropped", n.st.bufferDropped.Load(), "buffer_bytes", n.cfg.ReconnectBuffer)
		}
	default:
		n.st.bufferDropped.Add(count)
		if logDue(&n.lastDropLog) {
			n.log.Warn("cluster publish failed: messages for the other nodes dropped", "node_id", n.id, "error", err.Error())
		}
	}
}

// maxBatch bounds the messages from other nodes handed to the hub at once.
const maxBatch = 256

// accept appends to batch the chat messages of a NATS message from another
// node. It skips this node's own (were NoEcho not honoured) and counts a
// malformed tail as refused.
func (n *Node) accept(batch [][]byte, m *nats.Msg) [][]byte {
	data := m.Data
	if len(data) <= idLen || string(data[:idLen]) == n.id {
		return batch
	}
	data = data[idLen:]
	for len(data) > 0 {
		i := bytes.IndexByte(data, 0)
		if i < 0 {
			n.st.rejected.Add(1)
			break
		}
		batch = append(batch, data[:i+1:i+1])
		data = data[i+1:]
	}
	return batch
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
				if logDue(&n.lastRejectLog) {
					n.log.Warn("cluster message from another node refused", "room", room, "error", err.Error())
				}
			}
		}
	}
}

// logDue reports whether a rate-limited log line may be written now (at
// most one a second), and records it.
func logDue(last *atomic.Int64) bool {
	now := time.Now().UnixNano()
	prev := last.Load()
	return now-prev >= int64(time.Second) && last.CompareAndSwap(prev, now)
}
