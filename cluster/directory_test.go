package cluster

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
)

// askUntil repeats a control message until the answer is want.
func (c *chatClient) askUntil(msg, want string) {
	c.t.Helper()
	var got string
	testutil.EventuallyReport(c.t, waitTimeout, func() bool {
		got = c.ask(msg)
		return got == want
	}, func() string { return "answer to " + msg + ": " + got + ", want " + want })
}

func TestWhoAcrossNodes(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	ann, bob, cat, anon := nodes[0].connect(), nodes[1].connect(), nodes[2].connect(), nodes[2].connect()
	for _, x := range []struct {
		c    *chatClient
		nick string
	}{{ann, "ann"}, {bob, "Bob"}, {cat, "cat"}} {
		if got := x.c.ask(`<passerelle:nick name="` + x.nick + `"/>`); got != `<passerelle:nick name="`+x.nick+`"/>` {
			t.Fatalf("nick %s: %q", x.nick, got)
		}
		x.c.ask(`<passerelle:join room="lobby"/>`)
	}
	// who counts and lists the members of every node; joined counts them.
	cat.askUntil(`<passerelle:who/>`,
		`<passerelle:members room="lobby" count="3"><passerelle:member name="Bob"/><passerelle:member name="ann"/><passerelle:member name="cat"/></passerelle:members>`)
	anon.askUntil(`<passerelle:who/>`, `<passerelle:members room="default" count="1"></passerelle:members>`)
	if got := anon.ask(`<passerelle:join room="lobby"/>`); got != `<passerelle:joined room="lobby" members="4"/>` {
		t.Fatalf("join: %q", got)
	}
	ann.askUntil(`<passerelle:who/>`,
		`<passerelle:members room="lobby" count="4"><passerelle:member name="Bob"/><passerelle:member name="ann"/><passerelle:member name="cat"/></passerelle:members>`)

	// A member that leaves, and a nickname that changes, are seen everywhere.
	bob.ask(`<passerelle:leave/>`)
	cat.ask(`<passerelle:nick name="kitty"/>`)
	ann.askUntil(`<passerelle:who/>`,
		`<passerelle:members room="lobby" count="3"><passerelle:member name="ann"/><passerelle:member name="kitty"/></passerelle:members>`)
	// The released nickname is free on every node.
	if got := anon.ask(`<passerelle:nick name="CAT"/>`); got != `<passerelle:nick name="CAT"/>` {
		testutil.Eventually(t, "cat freed", waitTimeout, func() bool {
			return anon.ask(`<passerelle:nick name="CAT"/>`) == `<passerelle:nick name="CAT"/>`
		})
	}
}

func TestNickUniqueAcrossNodes(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	ann := nodes[0].connect()
	if got := ann.ask(`<passerelle:nick name="Zoé"/>`); got != `<passerelle:nick name="Zoé"/>` {
		t.Fatalf("nick: %q", got)
	}
	other := nodes[1].connect()
	if got, want := other.ask(`<passerelle:nick name="ZOÉ"/>`), `<passerelle:error code="nick-taken" command="nick">nickname &#34;ZOÉ&#34; is taken (&#34;Zoé&#34; reads the same)</passerelle:error>`; got != want {
		t.Fatalf("nick on another node:\n got %s\nwant %s", got, want)
	}

	// A race between the nodes for one nickname: exactly one wins, each
	// time.
	for round := range 5 {
		name := "racer" + string(rune('a'+round))
		var wg sync.WaitGroup
		answers := make([]string, len(nodes))
		clients := make([]*chatClient, len(nodes))
		for i, n := range nodes {
			clients[i] = n.connect()
		}
		for i := range nodes {
			wg.Go(func() {
				clients[i].send(`<passerelle:nick name="` + name + `"/>`)
			})
		}
		wg.Wait()
		wins := 0
		for i, c := range clients {
			got, err := c.read(waitTimeout)
			if err != nil {
				t.Fatal(err)
			}
			answers[i] = got
			if got == `<passerelle:nick name="`+name+`"/>` {
				wins++
			} else if !strings.Contains(got, `code="nick-taken"`) {
				t.Fatalf("node %d: %q", i, got)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d winners: %q", round, wins, answers)
		}
	}
}

func TestNodeKilled(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	a, b, c := nodes[0].connect(), nodes[1].connect(), nodes[2].connect()
	if got := c.ask(`<passerelle:nick name="carol"/>`); got != `<passerelle:nick name="carol"/>` {
		t.Fatalf("nick: %q", got)
	}
	waitInterest(t, servers(nodes), nodes[0].node.subject("default"), 3)
	a.send("before")
	b.expect("before")
	c.expect("before")

	nodes[2].kill()
	// The others go on, losing nothing.
	for i := range 50 {
		a.send("after " + string(rune('0'+i%10)))
		b.expect("after " + string(rune('0'+i%10)))
	}
	// The dead node's nickname and members are freed within the TTL.
	start := time.Now()
	a.askUntil(`<passerelle:who/>`, `<passerelle:members room="default" count="2"></passerelle:members>`)
	kv := nodes[0].node.dir.bucket()
	testutil.Eventually(t, "carol freed in the bucket", waitTimeout, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := kv.Get(ctx, nickKey("carol"))
		return err != nil && strings.Contains(err.Error(), "not found")
	})
	if d := time.Since(start); d > 3*testTTL {
		t.Errorf("freed after %v, want within about %v", d, testTTL)
	}
	if got := b.ask(`<passerelle:nick name="Carol"/>`); got != `<passerelle:nick name="Carol"/>` {
		t.Fatalf("nick after the node died: %q", got)
	}
}
