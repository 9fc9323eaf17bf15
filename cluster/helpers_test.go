package cluster

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/internal/testutil"
)

// waitTimeout bounds every wait for the cluster to reach a state.
const waitTimeout = 20 * time.Second

// testTTL is the expiry the tests use, so a dead node is forgotten fast.
const testTTL = 3 * time.Second

// freePorts returns n loopback ports free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln := testutil.Listen(t)
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// testNode is a hub with its cluster link, behind a loopback listener.
type testNode struct {
	t      testing.TB
	node   *Node
	hub    *hub.Hub
	addr   string
	stop   func()
	killed bool
}

// startNode starts a node and a hub on it.
func startNode(t testing.TB, cfg Config, hcfg hub.Config) *testNode {
	t.Helper()
	if cfg.TTL == 0 {
		cfg.TTL = testTTL
	}
	n, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	hcfg.Link = n
	if hcfg.Logger == nil && testing.Verbose() {
		hcfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	h := hub.New(hcfg)
	ln := testutil.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	wait := testutil.Serve(ln, func(c net.Conn) { h.ServeConn(ctx, c) })
	tn := &testNode{t: t, node: n, hub: h, addr: ln.Addr().String()}
	stopped := false
	tn.stop = func() {
		if stopped {
			return
		}
		stopped = true
		ln.Close()
		cancel()
		h.Close()
		wait()
		if tn.killed {
			return
		}
		n.Close()
	}
	t.Cleanup(tn.stop)
	return tn
}

// kill stops the node as a crash would: no goodbye to the bucket, its
// NATS server gone with it.
func (tn *testNode) kill() {
	tn.killed = true
	n := tn.node
	n.cancel()
	n.wg.Wait()
	n.nc.Close()
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
	tn.stop()
}

// startCluster starts size embedded nodes routed to each other on loopback,
// and waits until their bucket is ready.
func startCluster(t testing.TB, size int, tweak func(i int, cfg *Config)) []*testNode {
	t.Helper()
	ports := freePorts(t, size)
	// One secret for all: the first node makes it, the others read it.
	secret := filepath.Join(t.TempDir(), "cluster.secret")
	nodes := make([]*testNode, size)
	for i := range size {
		var routes []string
		for j, p := range ports {
			if j != i {
				routes = append(routes, "nats-route://127.0.0.1:"+strconv.Itoa(p))
			}
		}
		cfg := Config{
			Embedded:   true,
			Listen:     "127.0.0.1:" + strconv.Itoa(ports[i]),
			Routes:     routes,
			NodeName:   fmt.Sprintf("n%d", i),
			DataDir:    t.TempDir(),
			SecretFile: secret,
		}
		if tweak != nil {
			tweak(i, &cfg)
		}
		nodes[i] = startNode(t, cfg, hub.Config{})
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, n := range nodes {
		if err := n.node.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

// waitInterest waits until every live node's NATS server knows that
// members nodes subscribe to room, so that what is published now reaches
// them all.
func waitInterest(t testing.TB, servers []*server.Server, subject string, members int) {
	t.Helper()
	testutil.Eventually(t, "subscriptions to "+subject+" known to every server", waitTimeout, func() bool {
		for _, s := range servers {
			if s.GlobalAccount().Interest(subject) < members {
				return false
			}
		}
		return true
	})
}

// chatClient is a raw XMLSocket client.
type chatClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func (tn *testNode) connect() *chatClient {
	tn.t.Helper()
	c, err := net.Dial("tcp", tn.addr)
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.t.Cleanup(func() { c.Close() })
	return &chatClient{t: tn.t, conn: c, r: bufio.NewReader(c)}
}

func (c *chatClient) send(msgs ...string) {
	c.t.Helper()
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(m + "\x00")
	}
	if _, err := c.conn.Write([]byte(b.String())); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// read returns the next message, without its NUL, or fails after d.
func (c *chatClient) read(d time.Duration) (string, error) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	s, err := c.r.ReadString(0)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(s, "\x00"), nil
}

func (c *chatClient) expect(want ...string) {
	c.t.Helper()
	for _, w := range want {
		got, err := c.read(waitTimeout)
		if err != nil {
			c.t.Fatalf("waiting for %q: %v", w, err)
		}
		if got != w {
			c.t.Fatalf("got %q, want %q", got, w)
		}
	}
}

// expectNothing checks that nothing arrives for a moment.
func (c *chatClient) expectNothing() {
	c.t.Helper()
	if got, err := c.read(200 * time.Millisecond); err == nil {
		c.t.Fatalf("got %q, want nothing", got)
	}
}

// ask sends a control message and returns the answer.
func (c *chatClient) ask(msg string) string {
	c.t.Helper()
	c.send(msg)
	got, err := c.read(waitTimeout)
	if err != nil {
		c.t.Fatalf("answer to %s: %v", msg, err)
	}
	return got
}
