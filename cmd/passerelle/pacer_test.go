package main

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestPacer: chat --rate spaces sends evenly from the first, lets no burst
// through after a pause, gives its turn back when stopped, and does not
// wait at all at rate 0.
func TestPacer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(10) // one send every 100ms
		start := time.Now()
		var at []time.Duration
		for range 3 {
			if !p.wait(t.Context(), nil) {
				t.Fatal("wait reported a stop")
			}
			at = append(at, time.Since(start))
		}
		if want := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond}; !slices.Equal(at, want) {
			t.Fatalf("sends at %v, want %v", at, want)
		}

		// A pause of a second gathers no burst: the next send goes at
		// once, the one after it 100ms later.
		time.Sleep(time.Second)
		start = time.Now()
		p.wait(t.Context(), nil)
		p.wait(t.Context(), nil)
		if got := time.Since(start); got != 100*time.Millisecond {
			t.Fatalf("two sends after a pause took %v, want 100ms", got)
		}

		// Stopped while waiting: false at once, and the turn is given
		// back, so the next send is due when the stopped one was.
		stop := make(chan struct{})
		time.AfterFunc(30*time.Millisecond, func() { close(stop) })
		start = time.Now()
		if p.wait(t.Context(), stop) {
			t.Fatal("wait did not report the stop")
		}
		if got := time.Since(start); got != 30*time.Millisecond {
			t.Fatalf("stopped wait returned after %v, want 30ms", got)
		}
		p.wait(t.Context(), nil)
		if got := time.Since(start); got != 100*time.Millisecond {
			t.Fatalf("send after a stopped wait at %v, want 100ms (the stopped turn given back)", got)
		}

		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if p.wait(ctx, nil) {
			t.Fatal("wait with an ended context reported a send due")
		}

		unpaced := newPacer(0)
		start = time.Now()
		for range 1000 {
			unpaced.wait(t.Context(), nil)
		}
		if got := time.Since(start); got != 0 {
			t.Fatalf("rate 0 waited %v, want no wait", got)
		}
	})
}
