package hub

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/passerelle/passerelle/internal/testutil"
)

// goroutinesIn counts the goroutines whose stack goes through fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), fn+"(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// TestIdleClientHoldsNoWriter checks that a client with nothing to write
// holds no writer goroutine, only its reader, and that a writer is started
// again for the next message: an idle client costs one goroutine.
func TestIdleClientHoldsNoWriter(t *testing.T) {
	const writer, reader = "hub.(*client).writeLoop", "hub.(*client).run"
	for _, tr := range networks() {
		t.Run(tr.name, func(t *testing.T) {
			s := startHub(t, tr, Config{})
			a, b, c := s.connect(1), s.connect(2), s.connect(3)
			if n := goroutinesIn(reader); n != 3 {
				t.Fatalf("%d reader goroutines for 3 clients, want 3", n)
			}
			for round := range 3 {
				msg := fmt.Sprintf("round %d\x00", round)
				a.send(msg)
				b.expect(msg)
				c.expect(msg)
				testutil.EventuallyReport(t, waitTimeout, func() bool { return goroutinesIn(writer) == 0 }, func() string {
					return fmt.Sprintf("round %d: %d writer goroutines left for idle clients, want 0", round, goroutinesIn(writer))
				})
			}
			// A control answer is written by a writer started for it.
			b.send("<passerelle:ping/>\x00")
			b.expect("<passerelle:pong/>\x00")
			a.expectNothing()
		})
	}
}
