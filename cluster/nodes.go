package cluster

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/passerelle/passerelle/internal/retry"
)

// Every node writes the key "node.ID" in the bucket of nicknames and
// members (rewritten with its other keys, deleted when it leaves), and
// publishes packs only once it is written: a pack whose id is no such key
// comes from no node, and is dropped on arrival (unknown_node). Until its key
// is written a node holds its packs, as it does while the link is down,
// within Config.ReconnectBuffer.

// nodeKey is a node's key in the bucket.
func nodeKey(id string) string { return "node." + id }

// nuidPattern is what a node id looks like (a NUID); anything else is no
// node's, without asking the bucket.
var nuidPattern = regexp.MustCompile(`^[0-9A-Za-z]{22}$`)

// maxKnownNodes bounds the ids a node remembers; past it they are
// forgotten and asked again (node ids change at each start).
const maxKnownNodes = 4096

// Lookups of ids not known yet are rate-limited, so that packs with
// made-up ids cost at most this many lookups a second, each up to three
// bucket reads (fromNode); past them such a pack is dropped unread.
const (
	lookupsPerSecond = 20
	lookupBurst      = 20
)

// nodeSet is the ids of the nodes this node has seen in the bucket.
type nodeSet struct {
	mu      sync.Mutex
	known   map[string]bool
	lookups *rate.Limiter
}

func newNodeSet() *nodeSet {
	return &nodeSet{known: make(map[string]bool), lookups: rate.NewLimiter(lookupsPerSecond, lookupBurst)}
}

// fromNode reports whether id is a cluster node's: known already, or
// found in the bucket now. While the bucket is not set up here, or cannot
// be read, no one can tell, and the pack is taken.
func (n *Node) fromNode(id string) bool {
	if !nuidPattern.MatchString(id) {
		return false
	}
	s := n.nodes
	s.mu.Lock()
	ok := s.known[id]
	s.mu.Unlock()
	if ok {
		return true
	}
	kv := n.dir.bucket()
	if kv == nil {
		return true
	}
	if !s.lookups.Allow() {
		return false
	}
	// A replica a moment behind may not have the key of a node that has
	// just joined: ask again twice.
	err := retry.Do(n.ctx, retry.Backoff{Min: 5 * time.Millisecond, Max: 10 * time.Millisecond}, 3,
		func(err error) bool { return errors.Is(err, jetstream.ErrKeyNotFound) },
		func() error {
			ctx, cancel := context.WithTimeout(n.ctx, time.Second)
			defer cancel()
			_, err := kv.Get(ctx, nodeKey(id))
			return err
		})
	switch {
	case err == nil:
		s.mu.Lock()
		if len(s.known) >= maxKnownNodes {
			clear(s.known)
		}
		s.known[id] = true
		s.mu.Unlock()
		return true
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false
	}
	return true // cannot tell
}

// heldPack is a pack kept until this node's key is written.
type heldPack struct {
	room string
	buf  []byte
	n    int
}

// holdLocked keeps p until announce, within Config.ReconnectBuffer bytes;
// what does not fit is dropped and counted. n.outMu is held.
func (n *Node) holdLocked(room string, p *outPack) {
	if n.heldBytes+len(p.buf) > n.cfg.ReconnectBuffer {
		n.dropOutLocked(uint64(p.n), errNotAnnounced)
	} else {
		n.held = append(n.held, heldPack{room: room, buf: p.buf, n: p.n})
		n.heldBytes += len(p.buf)
		p.buf = append(make([]byte, 0, 4<<10), n.id...)
	}
	p.buf, p.n = p.buf[:idLen], 0
}

// errNotAnnounced: the node's key is not in the bucket yet and its hold
// is full.
var errNotAnnounced = errors.New("cluster: this node is not in the bucket yet and the packs it holds fill cluster reconnect buffer")

// announce is called once this node's key is written: what it held is
// published, in order, before any new pack.
func (n *Node) announce() {
	if n.announced.Load() {
		return
	}
	n.outMu.Lock()
	defer n.outMu.Unlock()
	n.announced.Store(true)
	for _, h := range n.held {
		n.publishRawLocked(h.room, h.buf, h.n)
	}
	n.held, n.heldBytes = nil, 0
}
