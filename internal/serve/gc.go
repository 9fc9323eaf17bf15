package serve

import (
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// The garbage collector's settings. A relay's heap is of two kinds. With
// many clients it is mostly their idle connections, kept for hours: the
// collector's target, runtime.gc_percent (50, below Go's 100), keeps the
// headroom over them small. With few clients it is mostly garbage, the
// TLS handshakes' above all: there a target proportional to a small live
// heap collects every few dozen handshakes, and the collector's fixed
// costs become a fifth of a handshake's CPU. runtime.gc_floor lets the
// heap reach that many bytes before runtime.gc_percent applies: after each
// collection the target is raised so that the next one comes at the floor
// (at most maxFloorPercent), never below runtime.gc_percent, which alone
// applies once the live heap is large enough (two thirds of the floor at
// 50). GOMEMLIMIT, Go's soft limit, still bites first when memory is
// short.
//
// The tuner is written here rather than taken from a library: the one
// there is (bytedance/gopkg's gctuner) stops the world at each collection
// to read the heap (runtime.ReadMemStats, where runtime/metrics suffices)
// and reads its bounds without synchronisation while they are set, which
// the race detector reports.

// defaultGCFloor is runtime.gc_floor's default: 64 MiB, the live heap of
// about 6,500 idle TLS clients (9.8 KB each); past about 4,500 the floor
// no longer raises runtime.gc_percent 50.
const defaultGCFloor = 64 << 20

// maxFloorPercent bounds the target runtime.gc_floor sets: a nearly empty
// heap is collected before it grows tenfold.
const maxFloorPercent = 1000

// gc holds the process's floor tuner, if one runs: like the collector's
// target it is the process's, and two serves started at once (tests) set
// it in turn.
var gc struct {
	sync.Mutex
	tuner *floorTuner
}

// setGC applies runtime.gc_percent and runtime.gc_floor, unless the
// operator set Go's own GOGC in the environment, which then wins as Go
// users expect.
func setGC(rc runtimeConfig, log *slog.Logger) {
	gc.Lock()
	defer gc.Unlock()
	if gc.tuner != nil {
		gc.tuner.stop()
		gc.tuner = nil
	}
	if env := os.Getenv("GOGC"); env != "" {
		log.Debug("GOGC is set: runtime.gc_percent and runtime.gc_floor ignored", "gogc", env)
		return
	}
	debug.SetGCPercent(rc.GCPercent)
	if rc.GCFloor > 0 {
		gc.tuner = startFloorTuner(uint64(rc.GCFloor), rc.GCPercent)
	}
}

// floorTuner sets the collector's target after each collection, from the
// live heap that collection found, so that the next one comes when the
// heap reaches floor: (floor - live) / live, between least and
// maxFloorPercent. It learns of each collection through a finalizer, which
// the runtime runs once the collection has found its object unreachable;
// the finalizer sets itself again for the next one until stop. The live
// heap is read from runtime/metrics, which stops nothing.
type floorTuner struct {
	floor   uint64
	least   int
	stopped bool // under gc's lock
}

// gcSentinel is the object whose finalizer runs after each collection.
type gcSentinel struct{ t *floorTuner }

func startFloorTuner(floor uint64, least int) *floorTuner {
	t := &floorTuner{floor: floor, least: least}
	runtime.SetFinalizer(&gcSentinel{t}, afterGC)
	return t
}

// stop ends t; gc's lock is held, so that a finalizer already running
// cannot set the target after the next setGC has.
func (t *floorTuner) stop() { t.stopped = true }

func afterGC(s *gcSentinel) {
	t := s.t
	gc.Lock()
	defer gc.Unlock()
	if t.stopped {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() == metrics.KindUint64 {
		debug.SetGCPercent(floorPercent(sample[0].Value.Uint64(), t.floor, t.least))
	}
	runtime.SetFinalizer(s, afterGC)
}

// floorPercent is the target that makes a heap of live bytes collected
// again at floor bytes, between least and maxFloorPercent.
func floorPercent(live, floor uint64, least int) int {
	if live == 0 || live >= floor {
		return least
	}
	p := (floor - live) * 100 / live
	return max(least, int(min(p, maxFloorPercent)))
}
