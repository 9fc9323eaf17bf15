package serve

import (
	"log/slog"
	"os"
	"runtime/debug"
	"testing"
)

// TestGCPercent checks that serve applies runtime.gc_percent, and leaves
// the collector alone when the operator set Go's own GOGC.
func TestGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	log := slog.New(slog.DiscardHandler)

	t.Setenv("GOGC", "") // registers the restore of any GOGC the run has
	os.Unsetenv("GOGC")
	setGCPercent(37, log)
	if got := debug.SetGCPercent(100); got != 37 {
		t.Fatalf("GC percent %d after runtime.gc_percent 37", got)
	}

	t.Setenv("GOGC", "80")
	setGCPercent(37, log)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GC percent %d with GOGC set; runtime.gc_percent must not override it", got)
	}
}
