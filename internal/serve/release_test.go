package serve

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
)

// TestReleaserTick: the releaser releases once per quiet spell, only when
// enough is held, and starts again after the process was busy.
func TestReleaserTick(t *testing.T) {
	const mib = 1 << 20
	type step struct {
		allocs, live, retained uint64
		want                   bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"quiet, much held: once", []step{
			{allocs: 100 * mib, live: 100 * mib, retained: 50 * mib, want: true},
			{allocs: 100 * mib, live: 100 * mib, retained: 50 * mib, want: false},
			{allocs: 100*mib + mib/2, live: 100 * mib, retained: 50 * mib, want: false},
		}},
		{"busy then quiet again: once more", []step{
			{allocs: 10 * mib, live: 20 * mib, retained: 30 * mib, want: true},
			{allocs: 50 * mib, live: 20 * mib, retained: 30 * mib, want: false},
			{allocs: 50 * mib, live: 20 * mib, retained: 30 * mib, want: true},
		}},
		{"quiet at the start, then busy", []step{
			{allocs: 5 * mib, live: 20 * mib, retained: 30 * mib, want: true},
			{allocs: 10 * mib, live: 20 * mib, retained: 30 * mib, want: false},
			{allocs: 15 * mib, live: 20 * mib, retained: 30 * mib, want: false},
		}},
		{"little held: never", []step{
			{allocs: 0, live: 1 * mib, retained: 3 * mib, want: false},
		}},
		{"held under an eighth of a large live heap: never", []step{
			{allocs: 0, live: 800 * mib, retained: 90 * mib, want: false},
			{allocs: 0, live: 800 * mib, retained: 101 * mib, want: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := releaser{last: heapUse{allocs: tt.steps[0].allocs}} // the reading at the start
			for i, s := range tt.steps {
				if got := r.tick(heapUse{allocs: s.allocs, live: s.live, retained: s.retained}); got != s.want {
					t.Fatalf("step %d: release %v, want %v", i, got, s.want)
				}
			}
		})
	}
}

// garbage is written to, so that the compiler keeps the allocations.
var garbage []byte

// TestReleaseWhenQuiet: garbage the collector has not yet freed, held by a
// process that then stops allocating, is given back to the system.
func TestReleaseWhenQuiet(t *testing.T) {
	prev := debug.SetGCPercent(1000) // the garbage below stays in the heap
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	runtime.GC()
	released := func() uint64 {
		s := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	for range 64 {
		garbage = make([]byte, 1<<20) // each one dropped by the next
	}
	garbage = nil
	before := released()

	log, logs := testutil.Logger(t, slog.LevelDebug)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); releaseWhenQuiet(ctx, 100*time.Millisecond, log) }()
	testutil.EventuallyReport(t, waitGC, func() bool { return strings.Contains(logs.String(), "quiet: memory given back") },
		func() string { return "no release logged; log:\n" + logs.String() })
	cancel()
	<-done
	if got := released() - before; got < 32<<20 {
		t.Fatalf("%d MiB given back, want at least 32 of the 64 MiB of garbage", got>>20)
	}
	if n := strings.Count(logs.String(), "quiet: memory given back"); n != 1 {
		t.Fatalf("%d releases in one quiet spell, want 1; log:\n%s", n, logs.String())
	}
}

// TestReleaseOff: runtime.release_after 0 returns at once.
func TestReleaseOff(t *testing.T) {
	done := make(chan struct{})
	go func() { defer close(done); releaseWhenQuiet(context.Background(), 0, nil) }()
	select {
	case <-done:
	case <-time.After(waitGC):
		t.Fatal("releaseWhenQuiet(0) did not return")
	}
}

// TestHeapReaderAllocatesNothing: the reading made at every tick counts
// toward the allocation rate it watches, so it allocates nothing itself.
func TestHeapReaderAllocatesNothing(t *testing.T) {
	r := newHeapReader()
	runtime.GC() // the live heap is known after a collection
	if u := r.read(); u.allocs == 0 || u.live == 0 {
		t.Fatalf("read %+v: want the process's allocations and live heap", u)
	}
	if n := testing.AllocsPerRun(100, func() { r.read() }); n != 0 {
		t.Fatalf("read allocates %.1f times, want 0", n)
	}
}
