package serve

import (
	"log/slog"
	"os"
	"runtime/debug"
	"sync/atomic"

	"github.com/bytedance/gopkg/util/gctuner"
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
// short. The tuner, like the collector, is the process's: one serve sets
// it.

// defaultGCFloor is runtime.gc_floor's default: 64 MiB, the heap of about
// 5,000 idle TLS clients at runtime.gc_percent 50.
const defaultGCFloor = 64 << 20

// maxFloorPercent bounds the target runtime.gc_floor sets: a nearly empty
// heap is collected before it grows tenfold.
const maxFloorPercent = 1000

// tuning says whether this process started gctuner's tuner, so that a
// configuration without a floor stops it (gctuner.Tuning(0) with none
// running would start an idle one).
var tuning atomic.Bool

// setGC applies runtime.gc_percent and runtime.gc_floor, unless the
// operator set Go's own GOGC in the environment, which then wins as Go
// users expect.
func setGC(rc runtimeConfig, log *slog.Logger) {
	env := os.Getenv("GOGC")
	if env != "" || rc.GCFloor <= 0 {
		if tuning.Swap(false) {
			gctuner.Tuning(0)
		}
	}
	if env != "" {
		log.Debug("GOGC is set: runtime.gc_percent and runtime.gc_floor ignored", "gogc", env)
		return
	}
	debug.SetGCPercent(rc.GCPercent)
	if rc.GCFloor <= 0 {
		return
	}
	gctuner.SetMinGCPercent(uint32(rc.GCPercent))
	gctuner.SetMaxGCPercent(uint32(max(rc.GCPercent, maxFloorPercent)))
	gctuner.Tuning(uint64(rc.GCFloor))
	tuning.Store(true)
}
