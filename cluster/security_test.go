package cluster

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/internal/testutil"
)

// TestRogueServerGetsNoRoute: a stock nats-server that knows the cluster's
// name and a node's route address, as docs/cluster.md's loopback layout
// gives them away, routes at the node. It gets no route, a client of it
// subscribed to everything sees none of the rooms' messages, and the same
// client's read of the certificate bucket (where the served keys are) gets
// no answer, while a node's read gets the key.
func TestRogueServerGetsNoRoute(t *testing.T) {
	logger, logs := testutil.Logger(t, slog.LevelInfo)
	nodes := startCluster(t, 2, func(i int, cfg *Config) {
		if i == 0 {
			cfg.Logger = logger
		}
	})
	routes := nodes[0].node.srv.NumRoutes()
	rogue := startRogue(t, nodes[0].node.cfg.Listen, nil)
	spy, err := nats.Connect(rogue.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	seen, err := spy.SubscribeSync(">")
	if err != nil {
		t.Fatal(err)
	}
	// The rogue retries its route every second: wait for a few refusals.
	testutil.Eventually(t, "three refusals", waitTimeout, func() bool { return nodes[0].node.Stats().RoutesRefused >= 3 })

	a, b := nodes[0].connect(), nodes[1].connect()
	waitInterest(t, servers(nodes), nodes[0].node.subject(hub.DefaultRoom), 2)
	a.send("for the cluster only")
	b.expect("for the cluster only")
	if m, err := seen.NextMsg(500 * time.Millisecond); err == nil {
		t.Fatalf("the rogue's client saw %s %q", m.Subject, m.Data)
	}
	if got := nodes[0].node.srv.NumRoutes(); got != routes || rogue.NumRoutes() != 0 {
		t.Fatalf("routes with a rogue: %d (was %d), rogue has %d", got, routes, rogue.NumRoutes())
	}
	if n := strings.Count(logs.String(), `msg="cluster route refused: a server without this cluster's credential or route certificate tried to join"`); n != 1 {
		t.Fatalf("%d route refused lines for %d refusals, want 1:\n%s", n, nodes[0].node.Stats().RoutesRefused, logs)
	}

	// The certificate bucket: a node reads the key a node stored, the
	// rogue's client gets no answer from the cluster's JetStream.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	const key = "certificates/acme/chat.example/chat.example.key"
	const pemKey = "-----BEGIN EC PRIVATE KEY-----\nnot a real one\n-----END EC PRIVATE KEY-----\n"
	if err := nodes[0].node.CertStorage().Store(ctx, key, []byte(pemKey)); err != nil {
		t.Fatal(err)
	}
	bucket := bucketNames(DefaultName)[1]
	get := "$JS.API.STREAM.MSG.GET.KV_" + bucket
	req := []byte(`{"seq":1,"next_by_subj":"$KV.` + bucket + `.>"}`)
	m, err := nodes[1].node.nc.Request(get, req, waitTimeout)
	if err != nil || !strings.Contains(string(m.Data), base64.StdEncoding.EncodeToString([]byte(pemKey))) {
		t.Fatalf("a node's read of the certificate bucket: %v, %q", err, m.Data)
	}
	if m, err := spy.Request(get, req, time.Second); err == nil {
		t.Fatalf("the rogue's client read the certificate bucket: %q", m.Data)
	}
}

// TestClusterSecretMadeOnce: the first node makes the secret (mode 0600)
// and the second reads it; a secret others may read is refused.
func TestClusterSecretMadeOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "cluster.secret")
	s1, err := loadOrCreateSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v, %v", fi, err)
	}
	s2, err := loadOrCreateSecret(path)
	if err != nil || string(s1) != string(s2) || len(s1) != 64 {
		t.Fatalf("second read: %q, %v (first %q)", s2, err, s1)
	}
	c1, _ := deriveRouteCredential(s1, "a")
	c2, _ := deriveRouteCredential(s1, "b")
	if c1 == c2 || strings.Contains(c1.password, string(s1)) {
		t.Fatalf("credentials of two clusters: %v %v", c1, c2)
	}
	os.Chmod(path, 0o644)
	want := "cluster.secret_file: " + path + " may be read by other users (mode 0644): chmod 600 " + path
	if _, err := loadOrCreateSecret(path); err == nil || err.Error() != want {
		t.Fatalf("readable secret: %v, want %s", err, want)
	}
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("password\n"), 0o600)
	want = "cluster.secret_file: " + short + " holds 8 bytes, under the 32 of a secret (remove it and a node makes one)"
	if _, err := loadOrCreateSecret(short); err == nil || err.Error() != want {
		t.Fatalf("short secret: %v, want %s", err, want)
	}
}

// TestForgedPacksDropped: on an existing NATS, another client publishes
// on a room's subject what no node sends, with a real node's id or with
// ids of no node. Each is dropped and counted by
// its reason, and the room's members see only the real message that
// follows.
func TestForgedPacksDropped(t *testing.T) {
	ns := startNATS(t, 0)
	url := natsURL(ns)
	a := startNode(t, Config{NATS: []string{url}}, hub.Config{})
	b := startNode(t, Config{NATS: []string{url}, MaxMessage: 100}, hub.Config{MaxMessage: 100})
	a1, b1 := a.connect(), b.connect()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, n := range []*testNode{a, b} {
		if err := n.node.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitInterest(t, []*server.Server{ns}, a.node.subject(hub.DefaultRoom), 2)
	forger, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	id := a.node.ID() // a real node's id, borrowed
	packs := []string{
		"short",
		id + strings.Repeat("m\x00", maxPackMessages+1),
		id + `<passerelle:joined room="default" members="1"/>SPOOFED` + "\x00",
		id + "\xEF\xBB\xBF\xEF\xBB\xBF<passerelle:pong/>\x00",
		id + strings.Repeat("x", 100) + "\x00",
		id + strings.Repeat("y", relayPackBytes+100) + "\x00",
		nuid.Next() + "from a made-up node\x00and more\x00",
		strings.Repeat("!", idLen) + "not an id\x00",
	}
	for _, p := range packs {
		if err := forger.Publish(a.node.subject(hub.DefaultRoom), []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	forger.Flush()
	want := map[string]uint64{"bad_pack": 1 + maxPackMessages + 1 + 1, "too_large": 1, "reserved_prefix": 2, "unknown_node": 3}
	testutil.EventuallyReport(t, waitTimeout, func() bool { return maps.Equal(b.node.Stats().DroppedOnArrival, want) },
		func() string {
			return fmt.Sprintf("dropped on arrival %v, want %v", b.node.Stats().DroppedOnArrival, want)
		})
	a1.send("real")
	b1.expect("real")
	if st := b.node.Stats(); st.Received != 1 || st.Rejected != 0 {
		t.Fatalf("b received %d, rejected %d; want 1, 0", st.Received, st.Rejected)
	}
}

// TestCleanStopFreesNickname: with three nodes, the nickname of a node
// stopped cleanly (what SIGTERM does) is free on another node as soon as
// the stop returns, not once the key expires.
func TestCleanStopFreesNickname(t *testing.T) {
	logger, _ := testutil.Logger(t, slog.LevelDebug)
	nodes := startCluster(t, 3, func(i int, cfg *Config) {
		cfg.TTL = time.Minute
		if i == 0 {
			cfg.Logger = logger
		}
	})
	carol := nodes[0].connect()
	if got := carol.ask(`<passerelle:nick name="carol"/>`); got != `<passerelle:nick name="carol"/>` {
		t.Fatalf("nick on node 0: %q", got)
	}
	other := nodes[1].connect()
	if got := other.ask(`<passerelle:nick name="carol"/>`); !strings.Contains(got, `code="nick-taken"`) {
		t.Fatalf("nick on node 1 while node 0 holds it: %q", got)
	}
	nodes[0].stop()
	if got := other.ask(`<passerelle:nick name="carol"/>`); got != `<passerelle:nick name="carol"/>` {
		t.Fatalf("nick on node 1 once node 0 stopped: %q", got)
	}
}

// TestTwoNodesWithoutMajority: a two-node cluster says at start that it
// cannot keep nicknames through the loss of one; once one is gone the other
// is degraded (and says so once) until it is back.
func TestTwoNodesWithoutMajority(t *testing.T) {
	logger, logs := testutil.Logger(t, slog.LevelInfo)
	nodes := startCluster(t, 2, func(i int, cfg *Config) {
		if i == 0 {
			cfg.Logger = logger
		}
	})
	const twoNodes = `msg="cluster of two nodes: nicknames stay unique across nodes only while both run; the loss of either leaves the bucket of nicknames and members without a majority (a third node keeps them through the loss of one)"`
	if n := strings.Count(logs.String(), twoNodes); n != 1 {
		t.Fatalf("%d two-node lines, want 1:\n%s", n, logs)
	}
	testutil.Eventually(t, "node 0 not degraded", waitTimeout, func() bool { return !nodes[0].node.Stats().Degraded })
	nodes[1].kill()
	testutil.Eventually(t, "node 0 degraded", waitTimeout, func() bool { return nodes[0].node.Stats().Degraded })
	testutil.EventuallyContains(t, logs, `level=WARN msg="cluster bucket of nicknames and members has no majority: nicknames are checked on this node only until enough nodes are back"`, waitTimeout)
}

// TestFloodPackDropped is the attack of one 800 KB NATS message holding
// 400,000 chat messages, under a real node's id: had it been delivered, it
// would overflow the queue of every member of the room on every node
// (256 KiB by default) and drop them all as slow. Each node drops the pack
// whole on arrival (it holds more messages than a node packs), counts its
// 400,000 messages as bad_pack, and its members get the next real message
// and nothing before it.
func TestFloodPackDropped(t *testing.T) {
	ns := startNATS(t, 0)
	url := natsURL(ns)
	var nodes []*testNode
	for range 3 {
		nodes = append(nodes, startNode(t, Config{NATS: []string{url}}, hub.Config{}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, n := range nodes {
		if err := n.node.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a := nodes[0]
	sender := a.connect()
	var members []*chatClient
	for _, n := range nodes[1:] {
		members = append(members, n.connect(), n.connect())
	}
	waitInterest(t, []*server.Server{ns}, a.node.subject(hub.DefaultRoom), 3)
	forger, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	const count = 400_000
	pack := a.node.ID() + strings.Repeat("m\x00", count)
	if err := forger.Publish(a.node.subject(hub.DefaultRoom), []byte(pack)); err != nil {
		t.Fatal(err)
	}
	forger.Flush()
	for i, n := range nodes[1:] {
		testutil.EventuallyReport(t, waitTimeout, func() bool { return n.node.Stats().DroppedOnArrival["bad_pack"] == count },
			func() string {
				return fmt.Sprintf("node %d dropped on arrival %v, want bad_pack %d", i+1, n.node.Stats().DroppedOnArrival, count)
			})
	}
	sender.send("real")
	for _, m := range members {
		m.expect("real")
	}
	for i, n := range nodes[1:] {
		if st := n.node.Stats(); st.Received != 1 || st.Rejected != 0 || st.SlowDropped != 0 {
			t.Fatalf("node %d received %d, rejected %d, slow dropped %d; want 1, 0, 0", i+1, st.Received, st.Rejected, st.SlowDropped)
		}
	}
}

// TestClientPermissions: passerelle's own connection, with clientPermissions
// (what the embedded server gives its one user, and what docs/cluster.md
// asks of an existing NATS's user), does all a node does: rooms across
// nodes, the bucket of nicknames, the certificate storage and its locks.
// The same user may do nothing else: no other subject, no other cluster's
// rooms or buckets, no purge or delete of its own buckets' streams, no
// subscription beyond its rooms and inboxes.
func TestClientPermissions(t *testing.T) {
	const cluster = "perm"
	password := randomPassword()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		Users: []*server.User{{Username: clientUser, Password: password, Permissions: clientPermissions(cluster)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(ns.Shutdown)
	url := "nats://" + clientUser + ":" + password + "@" + ns.Addr().String()
	cfg := Config{NATS: []string{url}, Name: cluster}
	a, b := startNode(t, cfg, hub.Config{}), startNode(t, cfg, hub.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, n := range []*testNode{a, b} {
		if err := n.node.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a1, b1 := a.connect(), b.connect()
	if got := a1.ask(`<passerelle:nick name="carol"/>`); got != `<passerelle:nick name="carol"/>` {
		t.Fatalf("nick on a: %q", got)
	}
	if got := b1.ask(`<passerelle:nick name="carol"/>`); !strings.Contains(got, `code="nick-taken"`) {
		t.Fatalf("nick on b while a holds it: %q", got)
	}
	waitInterest(t, []*server.Server{ns}, a.node.subject(hub.DefaultRoom), 2)
	a1.send("within the permissions")
	b1.expect("within the permissions")
	sa, sb := a.node.CertStorage(), b.node.CertStorage()
	if err := sa.Lock(ctx, "issue/chat.example"); err != nil {
		t.Fatal(err)
	}
	if err := sa.Store(ctx, "certificates/acme/chat.example/chat.example.key", []byte("key")); err != nil {
		t.Fatal(err)
	}
	if err := sa.Unlock(ctx, "issue/chat.example"); err != nil {
		t.Fatal(err)
	}
	if got, err := sb.Load(ctx, "certificates/acme/chat.example/chat.example.key"); err != nil || string(got) != "key" {
		t.Fatalf("certificate storage under the permissions: %q, %v", got, err)
	}

	violations := make(chan string, 16)
	nc, err := nats.Connect(url, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err.Error() }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const bucket = "passerelle_" + cluster
	denied := []struct {
		name, subject string
		subscribe     bool
	}{
		{"everything", ">", true},
		{"another cluster's rooms", "passerelle.other.room.ZGVmYXVsdA", true},
		{"a bucket's subjects", "$KV." + bucket + "_certs.>", true},
		{"another subject", "chat.default", false},
		{"another cluster's rooms", "passerelle.other.room.ZGVmYXVsdA", false},
		{"another bucket", "$KV.other.key", false},
		{"another bucket's stream", "$JS.API.STREAM.CREATE.KV_other", false},
		{"purge the nicknames", "$JS.API.STREAM.PURGE.KV_" + bucket, false},
		{"delete the nicknames", "$JS.API.STREAM.DELETE.KV_" + bucket, false},
		{"purge the certificates", "$JS.API.STREAM.PURGE.KV_" + bucket + "_certs", false},
		{"delete the certificates", "$JS.API.STREAM.DELETE.KV_" + bucket + "_certs", false},
		{"list the streams", "$JS.API.STREAM.LIST", false},
		{"the system account", "$SYS.REQ.SERVER.PING", false},
	}
	for _, d := range denied {
		var want string
		if d.subscribe {
			want = fmt.Sprintf(`nats: permissions violation: Permissions Violation for Subscription to "%s"`, d.subject)
			if _, err := nc.SubscribeSync(d.subject); err != nil {
				t.Fatal(err)
			}
		} else {
			want = fmt.Sprintf(`nats: permissions violation: Permissions Violation for Publish to "%s"`, d.subject)
			if err := nc.Publish(d.subject, []byte("{}")); err != nil {
				t.Fatal(err)
			}
		}
		// The server answers the violation before the flush's PONG.
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-violations:
			if got != want {
				t.Errorf("%s: %s, want %s", d.name, got, want)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s (%s): allowed", d.name, d.subject)
		}
	}
	// The purges and deletes were refused: the nickname and the key stay.
	if got := b1.ask(`<passerelle:nick name="carol"/>`); !strings.Contains(got, `code="nick-taken"`) {
		t.Fatalf("nick on b after the refused purges: %q", got)
	}
	if got, err := sb.Load(ctx, "certificates/acme/chat.example/chat.example.key"); err != nil || string(got) != "key" {
		t.Fatalf("certificate after the refused purges: %q, %v", got, err)
	}
}

// TestEmbeddedClientPort: the embedded server's client port, which
// passerelle's own connection does not even use (it connects in process),
// listens on loopback only, is advertised to no other node, and lets no
// one in without its user's random password.
func TestEmbeddedClientPort(t *testing.T) {
	nodes := startCluster(t, 2, nil)
	for i, n := range nodes {
		addr, ok := n.node.srv.Addr().(*net.TCPAddr)
		if !ok || !addr.IP.IsLoopback() {
			t.Fatalf("node %d's client port on %v, want loopback", i, n.node.srv.Addr())
		}
		// What a node's server tells its clients of the other nodes'
		// client ports: nothing.
		if urls := n.node.nc.DiscoveredServers(); len(urls) != 0 {
			t.Fatalf("node %d learnt client ports of the other nodes: %v", i, urls)
		}
		for _, opts := range [][]nats.Option{nil, {nats.UserInfo(clientUser, "guess")}, {nats.UserInfo("", "")}} {
			nc, err := nats.Connect(n.node.srv.ClientURL(), opts...)
			if err == nil {
				nc.Close()
				t.Fatalf("node %d's client port let a client in without the password", i)
			}
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("node %d's client port: %v, want %v", i, err, nats.ErrAuthorization)
			}
		}
	}
}
