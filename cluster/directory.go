package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/passerelle/passerelle/internal/retry"
)

// errNotReady is ClaimNick's and Members' error while the bucket is not
// usable (being set up, or NATS out of reach).
var errNotReady = errors.New("cluster: bucket of nicknames and members not ready")

// maxStaleTries is how many times a claim reads a nickname held by another
// node again before it answers taken: a replica a moment behind the leader
// catches up within a few milliseconds.
const maxStaleTries = 3

// opTimeout bounds each request to the bucket made for a client (a
// nickname claim, a member count).
const opTimeout = 2 * time.Second

// The bucket's keys:
//
//	nick.KEY        "NODEID NAME"   one per nickname (KEY: base64url of its PRECIS key)
//	room.ROOM.NODEID  {"count":3,"names":["ann"]}   one per room and node with members
type directory struct {
	n     *Node
	ready chan struct{}
	wake  chan struct{}

	mu        sync.Mutex
	kv        jetstream.KeyValue
	readyOnce sync.Once
	owned     map[string]*ownedNick // by bucket key
	dirty     map[string]bool       // rooms whose key must be rewritten
	all       bool                  // rewrite every key (after a reconnection)
	published map[string]bool       // rooms that have a key of this node (worker only)

	// degraded is true while the bucket is not usable: not set up yet,
	// or no majority of its replicas up.
	degraded atomic.Bool
	// lostLogged: the loss was said, so the return is said too (not the
	// first readiness).
	lostLogged atomic.Bool
}

type ownedNick struct {
	value    []byte
	rev      uint64 // 0: claimed while the bucket was out of reach
	released bool   // to delete from the bucket
}

func newDirectory(n *Node) *directory {
	d := &directory{
		n:         n,
		ready:     make(chan struct{}),
		wake:      make(chan struct{}, 1),
		owned:     make(map[string]*ownedNick),
		dirty:     make(map[string]bool),
		published: make(map[string]bool),
	}
	d.degraded.Store(true)
	return d
}

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func nickKey(key string) string        { return "nick." + enc(key) }
func roomKey(room, node string) string { return "room." + enc(room) + "." + node }
func roomPattern(room string) string   { return "room." + enc(room) + ".*" }
func (d *directory) bucket() jetstream.KeyValue {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.kv
}

// kick asks the worker to write the dirty keys, or every key.
func (d *directory) kick(all bool) {
	if all {
		d.mu.Lock()
		d.all = true
		d.mu.Unlock()
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run is the worker: it sets the bucket up, writes this node's room keys
// when they change, deletes released nicknames, and rewrites every key of
// this node each TTL/3 so that the bucket keeps them.
func (d *directory) run() {
	ctx := d.n.ctx
	tick := time.NewTicker(d.n.cfg.TTL / 3)
	defer tick.Stop()
	retry := time.NewTimer(0)
	defer retry.Stop()
	start := time.Now()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-tick.C:
			d.mu.Lock()
			d.all = true
			d.mu.Unlock()
		case <-retry.C:
		}
		if d.bucket() == nil {
			if err := d.setup(ctx); err != nil {
				if !warned && time.Since(start) > 15*time.Second {
					warned = true
					d.n.log.Warn("cluster bucket of nicknames and members not ready yet: nicknames are checked on this node only meanwhile (JetStream needs a majority of the nodes up)",
						"node_id", d.n.id, "error", err.Error())
				}
				retry.Reset(250 * time.Millisecond)
				continue
			}
			d.n.log.Info("cluster bucket of nicknames and members ready", "node_id", d.n.id)
			d.setDegraded(false)
			d.readyOnce.Do(func() { close(d.ready) })
			d.mu.Lock()
			d.all = true
			d.mu.Unlock()
		}
		if err := d.sync(ctx); err != nil {
			d.n.log.Debug("cluster bucket write failed", "node_id", d.n.id, "error", err.Error())
			if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) ||
				errors.Is(err, jetstream.ErrNoStreamResponse) {
				d.mu.Lock()
				d.kv = nil // lost with a restarted NATS: set it up again
				d.mu.Unlock()
			}
			retry.Reset(500 * time.Millisecond)
		}
	}
}

// setup creates the bucket (or binds to it). An embedded cluster keeps
// three replicas (or one per node when fewer); an external NATS three when
// it can, else one.
func (d *directory) setup(ctx context.Context) error {
	js, err := jetstream.New(d.n.nc)
	if err != nil {
		return err
	}
	replicas := []int{3, 1}
	if d.n.cfg.Embedded {
		replicas = []int{min(3, len(d.n.cfg.Routes)+1)}
	}
	var kv jetstream.KeyValue
	for _, r := range replicas {
		// Short: while JetStream has no leader the request gets no answer,
		// and a leader elected meanwhile should be used at once.
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		kv, err = js.CreateOrUpdateKeyValue(cctx, jetstream.KeyValueConfig{
			Bucket:      "passerelle_" + d.n.cfg.Name,
			Description: "passerelle chat: nicknames and room members of every node",
			History:     1,
			TTL:         d.n.cfg.TTL,
			Storage:     jetstream.MemoryStorage,
			Replicas:    r,
		})
		cancel()
		if err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("cluster: create the bucket: %w", err)
	}
	d.mu.Lock()
	d.kv = kv
	d.mu.Unlock()
	return nil
}

type roomEntry struct {
	Count int      `json:"count"`
	Names []string `json:"names,omitempty"`
}

// sync writes what changed: the rooms marked dirty (or every room and
// nickname after a tick or a reconnection), and the released nicknames.
func (d *directory) sync(ctx context.Context) error {
	kv := d.bucket()
	h := d.n.hub.Load()
	if kv == nil || h == nil {
		return nil
	}
	d.mu.Lock()
	all := d.all
	d.mu.Unlock()
	if all {
		// This node's own key first: the other nodes take its packs
		// only once it is there.
		cctx, cancel := context.WithTimeout(ctx, opTimeout)
		_, err := kv.Put(cctx, nodeKey(d.n.id), []byte("passerelle "+d.n.cfg.NodeName))
		cancel()
		if err != nil {
			return fmt.Errorf("put %s: %w", nodeKey(d.n.id), err)
		}
		d.n.announce()
	}
	d.mu.Lock()
	all = all || d.all
	d.all = false
	rooms := make([]string, 0, len(d.dirty))
	for r := range d.dirty {
		rooms = append(rooms, r)
	}
	clear(d.dirty)
	type nickJob struct {
		key string
		o   ownedNick
	}
	var nicks []nickJob
	for k, o := range d.owned {
		if o.released || all || o.rev == 0 {
			nicks = append(nicks, nickJob{k, *o})
		}
	}
	d.mu.Unlock()
	if all {
		for r := range d.published {
			rooms = append(rooms, r)
		}
		// Every room with members here, even if no change was seen.
		rooms = append(rooms, h.Rooms()...)
	}
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	done := make(map[string]bool, len(rooms))
	for _, room := range rooms {
		if done[room] {
			continue
		}
		done[room] = true
		keep(d.writeRoom(ctx, kv, h.LocalMembers, room))
	}
	for _, j := range nicks {
		keep(d.writeNick(ctx, kv, j.key, j.o))
	}
	if firstErr != nil {
		// Try the lot again later.
		d.mu.Lock()
		d.all = true
		d.mu.Unlock()
	}
	return firstErr
}

func (d *directory) writeRoom(ctx context.Context, kv jetstream.KeyValue, local func(string) ([]string, int), room string) error {
	names, count := local(room)
	key := roomKey(room, d.n.id)
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if count == 0 {
		if !d.published[room] {
			return nil
		}
		if err := kv.Delete(cctx, key); err != nil {
			d.markDirty(room)
			return fmt.Errorf("delete %s: %w", key, err)
		}
		delete(d.published, room)
		return nil
	}
	val, _ := json.Marshal(roomEntry{Count: count, Names: names})
	if _, err := kv.Put(cctx, key, val); err != nil {
		d.markDirty(room)
		return fmt.Errorf("put %s: %w", key, err)
	}
	d.published[room] = true
	return nil
}

func (d *directory) markDirty(room string) {
	d.mu.Lock()
	d.dirty[room] = true
	d.mu.Unlock()
}

// writeNick deletes a released nickname, or rewrites (or first writes) a
// held one.
func (d *directory) writeNick(ctx context.Context, kv jetstream.KeyValue, key string, o ownedNick) error {
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if o.released {
		var err error
		if o.rev != 0 {
			err = kv.Delete(cctx, key, jetstream.LastRevision(o.rev))
			if errors.Is(err, jetstream.ErrKeyExists) { // someone else's revision now: not ours to delete
				err = nil
			}
		}
		if err != nil {
			// Kept: written again later, or deleted by leave on a
			// clean stop (whose context cancels this one).
			return fmt.Errorf("delete %s: %w", key, err)
		}
		d.mu.Lock()
		if cur := d.owned[key]; cur != nil && cur.released && cur.rev == o.rev {
			delete(d.owned, key)
		}
		d.mu.Unlock()
		return nil
	}
	var rev uint64
	var err error
	if o.rev != 0 {
		rev, err = kv.Update(cctx, key, o.value, o.rev)
	}
	if o.rev == 0 || err != nil {
		// Claimed while out of reach, or lost (NATS restarted): claim again.
		rev, err = kv.Create(cctx, key, o.value)
		if errors.Is(err, jetstream.ErrKeyExists) {
			e, gerr := kv.Get(cctx, key)
			if gerr != nil {
				return fmt.Errorf("read %s: %w", key, gerr) // a replica behind: again later
			}
			holder := string(e.Value())
			if strings.HasPrefix(holder, d.n.id+" ") {
				// Ours already (a claim whose answer was lost).
				rev, err = kv.Update(cctx, key, o.value, e.Revision())
			} else {
				d.n.log.Warn("cluster nickname held on two nodes: it was claimed here while the other nodes could not be asked",
					"node_id", d.n.id, "key", key, "holder", holder)
				d.mu.Lock()
				if cur := d.owned[key]; cur != nil && !cur.released && cur.rev == o.rev {
					delete(d.owned, key) // the other node's claim stands in the bucket
				}
				d.mu.Unlock()
				return nil
			}
		}
		if err != nil {
			return fmt.Errorf("claim %s: %w", key, err)
		}
	}
	d.mu.Lock()
	if cur := d.owned[key]; cur != nil && !cur.released && cur.rev == o.rev {
		cur.rev = rev
	}
	d.mu.Unlock()
	return nil
}

// claim implements Node.ClaimNick.
func (d *directory) claim(key, name string) (string, bool, error) {
	k := nickKey(key)
	val := []byte(d.n.id + " " + name)
	kv := d.bucket()
	if kv == nil {
		d.own(k, val, 0)
		return "", false, errNotReady
	}
	ctx, cancel := context.WithTimeout(d.n.ctx, opTimeout)
	defer cancel()
	// Reads may come from a replica a little behind the leader that
	// refused the Create: a key that "exists" yet reads as absent is read
	// again after a pause. Create and Update are decided by the leader, so
	// a stale read never lets two nodes win.
	pause := retry.Backoff{Min: 5 * time.Millisecond, Max: 100 * time.Millisecond}
	staleTries := 0
	for {
		rev, err := kv.Create(ctx, k, val)
		if err == nil {
			d.own(k, val, rev)
			return name, true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			d.own(k, val, 0)
			return "", false, fmt.Errorf("cluster: claim nickname: %w", err)
		}
		e, err := kv.Get(ctx, k)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			// freed meanwhile, or a replica behind: try again
		case err != nil:
			d.own(k, val, 0)
			return "", false, fmt.Errorf("cluster: read nickname: %w", err)
		default:
			node, holder, _ := strings.Cut(string(e.Value()), " ")
			if node != d.n.id {
				// The read, and Create's own read of a deleted key, may
				// come from a replica that has not yet applied a delete
				// the leader acknowledged (a node that just stopped
				// cleanly): ask again a few times before saying taken.
				if staleTries < maxStaleTries {
					staleTries++
					break
				}
				return holder, false, nil
			}
			// Ours, left by a client of this node that is gone (its
			// release not written yet): the hub checked that no client
			// here holds it.
			if rev, err := kv.Update(ctx, k, val, e.Revision()); err == nil {
				d.own(k, val, rev)
				return name, true, nil
			}
		}
		if !retry.Sleep(ctx, pause.Next()) {
			d.own(k, val, 0)
			return "", false, fmt.Errorf("cluster: claim nickname: %w", ctx.Err())
		}
	}
}

func (d *directory) own(key string, val []byte, rev uint64) {
	d.mu.Lock()
	d.owned[key] = &ownedNick{value: val, rev: rev}
	d.mu.Unlock()
	if rev == 0 {
		d.kick(false)
	}
}

// release implements Node.ReleaseNick: the worker deletes it.
func (d *directory) release(key string) {
	d.mu.Lock()
	if o := d.owned[nickKey(key)]; o != nil {
		o.released = true
	}
	d.mu.Unlock()
	d.kick(false)
}

// members implements Node.Members: the room's keys of the other nodes.
func (d *directory) members(room string) ([]string, int, error) {
	kv := d.bucket()
	if kv == nil {
		return nil, 0, errNotReady
	}
	ctx, cancel := context.WithTimeout(d.n.ctx, opTimeout)
	defer cancel()
	w, err := kv.Watch(ctx, roomPattern(room), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, 0, fmt.Errorf("cluster: read members: %w", err)
	}
	defer w.Stop()
	var names []string
	count := 0
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, 0, fmt.Errorf("cluster: read members: watch closed")
			}
			if e == nil { // every current value seen
				sort.Strings(names)
				return names, count, nil
			}
			if strings.HasSuffix(e.Key(), "."+d.n.id) {
				continue
			}
			var re roomEntry
			if json.Unmarshal(e.Value(), &re) != nil || re.Count < 0 {
				continue
			}
			count += re.Count
			names = append(names, re.Names...)
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("cluster: read members: %w", ctx.Err())
		}
	}
}

// leaveTimeout bounds a clean stop's deletes of this node's keys, retried
// meanwhile (a stream leader being elected, a route being re-established).
const leaveTimeout = 5 * time.Second

// leave deletes this node's keys, so the other nodes need not wait for
// them to expire. It runs with a context of its own (the node's is
// cancelled by then) and retries what failed until leaveTimeout.
func (d *directory) leave() {
	kv := d.bucket()
	if kv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
	defer cancel()
	// A nickname is deleted only at the revision this node wrote, so that
	// one another node took after it expired stays that node's.
	keys := make(map[string]uint64, len(d.owned)+len(d.published))
	d.mu.Lock()
	for k, o := range d.owned {
		keys[k] = o.rev
	}
	d.mu.Unlock()
	for r := range d.published {
		keys[roomKey(r, d.n.id)] = 0
	}
	keys[nodeKey(d.n.id)] = 0
	pause := retry.Backoff{Min: 50 * time.Millisecond, Max: 500 * time.Millisecond}
	for {
		var last error
		for k, rev := range keys {
			var opts []jetstream.KVDeleteOpt
			if rev != 0 {
				opts = append(opts, jetstream.LastRevision(rev))
			}
			cctx, ccancel := context.WithTimeout(ctx, time.Second)
			err := kv.Delete(cctx, k, opts...)
			ccancel()
			if err == nil || errors.Is(err, jetstream.ErrKeyExists) {
				delete(keys, k)
			} else {
				last = err
			}
		}
		if len(keys) == 0 {
			return
		}
		if !retry.Sleep(ctx, pause.Next()) {
			d.n.log.Warn("cluster keys not deleted on leaving: the other nodes free them when they expire",
				"node_id", d.n.id, "keys", len(keys), "error", last.Error(), "ttl", d.n.cfg.TTL.String())
			return
		}
	}
}

// majorityProbe is how often the bucket's majority is checked.
const majorityProbe = time.Second

// probe checks, every majorityProbe, that the bucket of nicknames and
// members answers: it does only while a majority of its replicas is up
// (JetStream elects no leader otherwise). Meanwhile the node is degraded:
// nicknames are checked on this node only.
func (d *directory) probe() {
	ctx := d.n.ctx
	tick := time.NewTicker(majorityProbe)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		kv := d.bucket()
		ok := false
		if kv != nil {
			cctx, cancel := context.WithTimeout(ctx, majorityProbe)
			st, err := kv.Status(cctx)
			cancel()
			ok = err == nil && hasMajority(st)
		}
		d.setDegraded(!ok)
	}
}

// hasMajority reads a bucket's stream state: a leader, and more than half
// of its replicas current (a leader that lost its peers answers for a
// while before it steps down). A bucket on one server has no cluster
// state and is whole while it answers.
func hasMajority(st jetstream.KeyValueStatus) bool {
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok || bs.StreamInfo() == nil || bs.StreamInfo().Cluster == nil {
		return true
	}
	ci := bs.StreamInfo().Cluster
	if ci.Leader == "" {
		return false
	}
	up := 1
	for _, r := range ci.Replicas {
		if r.Current && !r.Offline {
			up++
		}
	}
	return 2*up > 1+len(ci.Replicas)
}

// setDegraded records the bucket's state and logs its changes.
func (d *directory) setDegraded(degraded bool) {
	if d.degraded.Swap(degraded) == degraded || d.n.ctx.Err() != nil {
		return
	}
	if degraded {
		d.lostLogged.Store(true)
		d.n.degradedLog.Warn("majority lost", "cluster bucket of nicknames and members has no majority: nicknames are checked on this node only until enough nodes are back",
			"node_id", d.n.id)
	} else if d.lostLogged.Swap(false) {
		d.n.degradedLog.Info("majority back", "cluster bucket of nicknames and members has its majority again", "node_id", d.n.id)
	}
}
