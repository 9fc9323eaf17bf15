package cluster

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/passerelle/passerelle/hub"
)

func servers(nodes []*testNode) []*server.Server {
	var s []*server.Server
	for _, n := range nodes {
		if !n.killed {
			s = append(s, n.node.srv)
		}
	}
	return s
}

func TestRelayAcrossNodes(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	a, a2, b, c := nodes[0].connect(), nodes[0].connect(), nodes[1].connect(), nodes[2].connect()
	waitInterest(t, servers(nodes), nodes[0].node.subject(hub.DefaultRoom), 3)

	// The default room: every message reaches every other member on every
	// node once, in the sender's order, never the sender.
	var sent []string
	for i := range 200 {
		sent = append(sent, fmt.Sprintf("<m n=\"%d\"/>", i))
	}
	a.send(sent...)
	a2.expect(sent...)
	b.expect(sent...)
	c.expect(sent...)
	a.expectNothing()
	a2.expectNothing()

	// Another room: only its members, on their nodes.
	for _, cl := range []*chatClient{a, b} {
		if got := cl.ask(`<passerelle:join room="lobby.fr"/>`); got[:len(`<passerelle:joined room="lobby.fr"`)] != `<passerelle:joined room="lobby.fr"` {
			t.Fatalf("join: %q", got)
		}
	}
	waitInterest(t, servers(nodes), nodes[0].node.subject("lobby.fr"), 2)
	b.send("from b")
	a.expect("from b")
	a.send("from a")
	b.expect("from a")
	c.send("to default")
	a2.expect("to default")
	a.expectNothing()
	b.expectNothing()

	for i, n := range nodes {
		st := n.node.Stats()
		if !st.Connected || st.SlowDropped != 0 || st.BufferDropped != 0 || st.Rejected != 0 {
			t.Errorf("node %d stats: %+v", i, st)
		}
	}
	if st := nodes[0].node.Stats(); st.Published != 201 {
		t.Errorf("node 0 published %d, want 201", st.Published)
	}
}
