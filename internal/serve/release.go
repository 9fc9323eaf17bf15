package serve

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Giving memory back while quiet. The collector keeps the heap it may grow
// into: after a collection that found L bytes live, the process holds up
// to L × (1 + runtime.gc_percent/100) (more under runtime.gc_floor), and
// Go's scavenger returns to the system only what lies past that. A busy
// relay reuses that room at once; a quiet one (thousands of idle clients,
// parked, nothing allocating) holds it for good, since no collection comes
// to free the garbage in it. runtime.release_after watches the allocation
// rate: once the process has allocated little for that long, it collects
// and returns every free page (debug.FreeOSMemory), once per quiet spell,
// and only when there is enough to gain to pay for the collection.

// defaultReleaseAfter is runtime.release_after's default.
const defaultReleaseAfter = 5 * time.Second

// quietBytes is how much a quiet process may allocate per
// runtime.release_after: pings, a metrics scrape, a few chat messages.
const quietBytes = 1 << 20

// minRelease is the least a release must gain (heap that is neither live
// nor given back) for its collection to be worth it.
const minRelease = 4 << 20

// releaseSamples are the runtime/metrics releaseWhenQuiet reads.
var releaseSamples = [...]string{
	"/gc/heap/allocs:bytes",              // allocated since the start
	"/gc/heap/live:bytes",                // live after the last collection
	"/memory/classes/heap/objects:bytes", // live and not yet freed
	"/memory/classes/heap/unused:bytes",  // reserved for objects, unused
	"/memory/classes/heap/free:bytes",    // free, not yet returned
}

// heapUse is what releaseWhenQuiet reads at each tick.
type heapUse struct {
	allocs, live, retained uint64 // retained: held but neither live nor returned
}

// heapReader reads heapUse, into samples made once.
type heapReader [len(releaseSamples)]metrics.Sample

func newHeapReader() *heapReader {
	var r heapReader
	for i, name := range releaseSamples {
		r[i].Name = name
	}
	return &r
}

func (r *heapReader) read() heapUse {
	metrics.Read(r[:])
	var v [len(releaseSamples)]uint64
	for i := range r {
		if r[i].Value.Kind() == metrics.KindUint64 {
			v[i] = r[i].Value.Uint64()
		}
	}
	u := heapUse{allocs: v[0], live: v[1]}
	if held := v[2] + v[3] + v[4]; held > v[1] {
		u.retained = held - v[1]
	}
	return u
}

// releaser decides, from one tick's reading to the next, when to release.
type releaser struct {
	last     heapUse
	released bool // released in this quiet spell
}

// tick reports whether to release now: the process allocated less than
// quietBytes since the last tick, has not released since it was last
// busy, and holds at least minRelease, and an eighth of its live heap,
// that it does not use.
func (r *releaser) tick(now heapUse) bool {
	busy := now.allocs-r.last.allocs >= quietBytes
	r.last = now
	if busy {
		r.released = false
		return false
	}
	if r.released || now.retained < max(minRelease, now.live/8) {
		return false
	}
	r.released = true
	return true
}

// releaseWhenQuiet runs until ctx ends, releasing memory once per quiet
// spell; every is runtime.release_after, 0 for never.
func releaseWhenQuiet(ctx context.Context, every time.Duration, log *slog.Logger) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	heap := newHeapReader()
	r := releaser{last: heap.read()}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		before := heap.read()
		if !r.tick(before) {
			continue
		}
		debug.FreeOSMemory()
		after := heap.read()
		log.Debug("quiet: memory given back", "held_mib", before.retained>>20, "kept_mib", after.retained>>20, "live_mib", after.live>>20)
		r.last = after // the collection's own allocations are not activity
	}
}
