package hub

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/protocol/xmlsocket"
)

// TestReservedPrefixAfterBOM: a message that reads as a control message
// once its leading byte-order marks are dropped (as a UTF-8 decoder drops
// them) is one: a forged server reply is refused, not relayed.
func TestReservedPrefixAfterBOM(t *testing.T) {
	s := startHub(t, plainNetwork(), Config{})
	victim := s.connect(1)
	attacker := s.connect(2)
	tests := []struct {
		send, want string
	}{
		{"\ufeff<passerelle:joined room=\"attacker-room\"/>", `<passerelle:error code="unknown-command" command="joined">unknown control message &lt;passerelle:joined&gt;; known: join, leave, nick, who, ping</passerelle:error>`},
		{"\ufeff\ufeff<passerelle:nick name=\"you-were-renamed\"/>", `<passerelle:nick name="you-were-renamed"/>`},
		{"\ufeff<passerelle:ping/>", `<passerelle:pong/>`},
	}
	for _, tt := range tests {
		attacker.send(tt.send + "\x00")
		attacker.expect(tt.want + "\x00")
	}
	// A BOM before anything else is text like any other, relayed as it is.
	attacker.send("\ufeffhello <passerelle:x/>\x00")
	victim.expect("\ufeffhello <passerelle:x/>\x00")
	victim.expectNothing()
}

// TestControlStart: where the control prefix starts, byte-order marks
// skipped.
func TestControlStart(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"<passerelle:ping/>\x00", 0},
		{"\ufeff<passerelle:ping/>\x00", 3},
		{"\ufeff\ufeff<passerelle:ping/>\x00", 6},
		{"\xef\xbb<passerelle:ping/>\x00", -1},
		{" <passerelle:ping/>\x00", -1},
		{"\ufeff\x00", -1},
		{"<passerelle:\x00", 0},
		{"<passerelle\x00", -1},
		{"\x00", -1},
	}
	for _, tt := range tests {
		if got := controlStart([]byte(tt.in)); got != tt.want {
			t.Errorf("controlStart(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// TestAdmission: an admitted client is a member at once; what the room
// relays to it is written only once it is served, in order, and a client
// that leaves instead is written nothing, its connection left open and
// unlogged.
func TestAdmission(t *testing.T) {
	s := startHub(t, plainNetwork(), Config{})
	sender := s.connect(1)
	admitted := make(chan *Admission, 1)
	ln := testutil.Listen(t)
	done := make(chan struct{})
	wait := testutil.Serve(ln, func(c net.Conn) {
		admitted <- s.hub.AdmitConn(context.Background(), c)
		<-done // the connection stays open for the test's client
	})
	t.Cleanup(func() { ln.Close(); close(done); wait() })
	for _, serve := range []bool{true, false} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		a := <-admitted
		s.waitRoom(DefaultRoom, 2)
		sender.send("one\x00two\x00")
		// Held: nothing written yet.
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, err := c.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
			t.Fatalf("held client read %d bytes, %v; want nothing", n, err)
		}
		if serve {
			go a.Serve()
			cl := &tclient{t: t, conn: c, rd: xmlsocket.NewReader(c, 1<<20)}
			cl.expect("one\x00", "two\x00")
			c.Close()
			s.waitRoom(DefaultRoom, 1)
			continue
		}
		a.Leave()
		s.waitRoom(DefaultRoom, 1)
		// The connection is still the caller's: open, nothing written.
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, err := c.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
			t.Fatalf("a client that left read %d bytes, %v; want nothing and an open connection", n, err)
		}
		if n := s.closed(ReasonShutdown); n != 0 {
			t.Fatalf("%d clients logged closed, want none for a client that left", n)
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
