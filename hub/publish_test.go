package hub

import (
	"strings"
	"testing"
)

func TestPublish(t *testing.T) {
	s := startHub(t, plainNetwork(), Config{MaxMessage: 64})
	seed, ann := s.connect(1), s.connect(2)
	ann.send(`<passerelle:join room="lobby"/>` + "\x00")
	ann.expect(`<passerelle:joined room="lobby" members="1"/>` + "\x00")

	// Messages from elsewhere reach the room's members, in order, as if
	// relayed, and only them.
	n, err := s.hub.Publish("lobby", []byte("<m>from another node</m>\x00"), []byte("second\x00"))
	if err != nil || n != 1 {
		t.Fatalf("Publish = %d, %v; want 1, nil", n, err)
	}
	ann.expect("<m>from another node</m>\x00", "second\x00")
	if n, err := s.hub.Publish("nobody-here", []byte("lost\x00")); err != nil || n != 0 {
		t.Fatalf("Publish to an empty room = %d, %v; want 0, nil", n, err)
	}
	seed.expectNothing()
	if n, err := s.hub.Publish(DefaultRoom, []byte("to default\x00")); err != nil || n != 1 {
		t.Fatalf("Publish to default = %d, %v; want 1, nil", n, err)
	}
	seed.expect("to default\x00")

	// A batch with one bad message delivers nothing.
	bad := []struct {
		msg  string
		want string
	}{
		{"no nul", `hub: publish to "lobby": message 1 does not end with a NUL`},
		{"", `hub: publish to "lobby": message 1 does not end with a NUL`},
		{"two\x00in one\x00", `hub: publish to "lobby": message 1 holds a NUL before its end`},
		{strings.Repeat("x", 64) + "\x00", `hub: publish to "lobby": message 1 is 65 bytes, over the maximum of 64`},
	}
	for _, tt := range bad {
		n, err := s.hub.Publish("lobby", []byte("fine\x00"), []byte(tt.msg))
		if err == nil || err.Error() != tt.want || n != 0 {
			t.Fatalf("Publish(%q) = %d, %v; want 0, %s", tt.msg, n, err, tt.want)
		}
	}
	s.hub.Publish("lobby", []byte("after the bad ones\x00"))
	ann.expect("after the bad ones\x00")
	ann.expectNothing()
}

func TestPublishBudget(t *testing.T) {
	// Published messages count against each receiver's budget like
	// relayed ones: a member that does not read is dropped, the others go
	// on.
	s := startHub(t, plainNetwork(), Config{QueueBytes: 64 << 10})
	reader, stuck := s.connect(1), s.connect(2)
	msg := []byte(strings.Repeat("p", 1023) + "\x00")
	for i := 0; s.closed(ReasonSlowConsumer) == 0; i++ {
		if i == 100000 { // 100 MB: far more than the kernel buffers
			t.Fatalf("the member that does not read was never dropped")
		}
		if _, err := s.hub.Publish(DefaultRoom, msg); err != nil {
			t.Fatal(err)
		}
		reader.expect(string(msg))
	}
	s.waitRoom(DefaultRoom, 1)
	stuck.expectClosed()
	if got := s.closed(ReasonSlowConsumer); got != 1 {
		t.Fatalf("closed for slow_consumer: %d, want 1", got)
	}
	n, err := s.hub.Publish(DefaultRoom, []byte("still here\x00"))
	if err != nil || n != 1 {
		t.Fatalf("Publish = %d, %v; want 1, nil", n, err)
	}
	reader.expect("still here\x00")
}
