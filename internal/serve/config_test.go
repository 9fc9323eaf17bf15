package serve

import (
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
)

// waitGC bounds the wait for the tuner, which runs after a collection.
const waitGC = 10 * time.Second

// gcPercent reads the collector's target without changing it.
func gcPercent() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestGCPercent checks that serve applies runtime.gc_percent, and leaves
// the collector alone when the operator set Go's own GOGC.
func TestGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	log := slog.New(slog.DiscardHandler)

	t.Setenv("GOGC", "") // registers the restore of any GOGC the run has
	os.Unsetenv("GOGC")
	setGC(runtimeConfig{GCPercent: 37}, log)
	if got := gcPercent(); got != 37 {
		t.Fatalf("GC percent %d after runtime.gc_percent 37", got)
	}

	t.Setenv("GOGC", "80")
	debug.SetGCPercent(100)
	setGC(runtimeConfig{GCPercent: 37, GCFloor: 1 << 30}, log)
	runtime.GC()
	runtime.GC()
	if got := gcPercent(); got != 100 {
		t.Fatalf("GC percent %d with GOGC set; runtime.gc_percent and runtime.gc_floor must not override it", got)
	}
}

// TestGCFloor checks that runtime.gc_floor raises the collector's target
// while the live heap is far below the floor (up to maxFloorPercent),
// leaves runtime.gc_percent alone once the heap is past it, and stops
// when set to 0.
func TestGCFloor(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
	log := slog.New(slog.DiscardHandler)
	t.Cleanup(func() {
		setGC(runtimeConfig{GCPercent: 100}, log)
		debug.SetGCPercent(prev)
	})
	collected := func(want uint64) func() bool {
		return func() bool {
			runtime.GC()
			return gcPercent() == want
		}
	}

	// This test's heap is a few MiB: a 1 GiB floor raises the target to
	// its bound.
	setGC(runtimeConfig{GCPercent: 50, GCFloor: 1 << 30}, log)
	testutil.Eventually(t, "target raised to maxFloorPercent", waitGC, collected(maxFloorPercent))

	// A floor below the live heap: runtime.gc_percent applies.
	setGC(runtimeConfig{GCPercent: 50, GCFloor: 1}, log)
	testutil.Eventually(t, "target back to runtime.gc_percent", waitGC, collected(50))

	// Off: runtime.gc_percent, and it stays so through collections.
	setGC(runtimeConfig{GCPercent: 50, GCFloor: 1 << 30}, log)
	testutil.Eventually(t, "target raised again", waitGC, collected(maxFloorPercent))
	setGC(runtimeConfig{GCPercent: 60}, log)
	for range 3 {
		runtime.GC()
		runtime.Gosched()
	}
	if got := gcPercent(); got != 60 {
		t.Fatalf("GC percent %d after runtime.gc_floor 0 and three collections; want runtime.gc_percent 60", got)
	}
}

// TestFloorPercent checks the target the floor sets from the live heap.
func TestFloorPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live, floor uint64
		least, want int
	}{
		{0, 64 * mib, 50, 50},           // nothing read yet: gc_percent
		{64 * mib, 64 * mib, 50, 50},    // at the floor
		{100 * mib, 64 * mib, 50, 50},   // past it: gc_percent alone
		{32 * mib, 64 * mib, 50, 100},   // next collection at 64 MiB
		{40 * mib, 64 * mib, 50, 60},    // 24 MiB of headroom
		{48 * mib, 64 * mib, 50, 50},    // a third would be below gc_percent
		{1 * mib, 64 * mib, 50, 1000},   // bounded by maxFloorPercent
		{1 * mib, 64 * mib, 2000, 2000}, // gc_percent above the bound wins
	} {
		if got := floorPercent(tc.live, tc.floor, tc.least); got != tc.want {
			t.Errorf("floorPercent(%d MiB live, %d MiB floor, least %d) = %d, want %d",
				tc.live/mib, tc.floor/mib, tc.least, got, tc.want)
		}
	}
}
