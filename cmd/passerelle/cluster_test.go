package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/passerelle/passerelle/cluster"
	"github.com/passerelle/passerelle/internal/testutil"
)

// freeLoopbackPorts returns n loopback ports free a moment ago.
func freeLoopbackPorts(t *testing.T, n int) []int {
	var ports []int
	for range n {
		ln := testutil.Listen(t)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
	}
	return ports
}

// TestServeCluster runs two `passerelle serve` nodes forming an embedded
// NATS cluster from their configuration files alone: a client of one and
// a client of the other share the default room and see each other in who.
func TestServeCluster(t *testing.T) {
	ports := freeLoopbackPorts(t, 2)
	// The first node makes the secret that both derive their route
	// credential from.
	secret := filepath.Join(t.TempDir(), "cluster.secret")
	var nodes []*served
	for i := range 2 {
		dir := t.TempDir()
		config := fmt.Sprintf(`data_dir: %s
listeners:
  - address: 127.0.0.1:0
    service: chat
    tls: {mode: off}
cluster:
  embedded: true
  name: test
  node_name: node%d
  listen: 127.0.0.1:%d
  routes: [nats-route://127.0.0.1:%d]
  secret_file: %s
admin:
  address: 127.0.0.1:0
`, dir, i, ports[i], ports[1-i], secret)
		file := writeConfig(t, dir, config)
		nodes = append(nodes, runServeCLI(t, []string{"--config", file, "serve"}, 1))
	}
	if fi, err := os.Stat(secret); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cluster secret made on first start: %v, %v (want mode 0600)", fi, err)
	}
	dial := func(s *served) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", s.addrs["chat"][0])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	a, ar := dial(nodes[0])
	b, br := dial(nodes[1])
	read := func(r *bufio.Reader, c net.Conn, d time.Duration) string {
		c.SetReadDeadline(time.Now().Add(d))
		s, err := r.ReadString(0)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(s, "\x00")
	}
	// The nodes' subscriptions take a moment to reach each other.
	testutil.Eventually(t, "a message from node 0 at node 1", waitTimeout, func() bool {
		a.Write([]byte("hello\x00"))
		return read(br, b, 200*time.Millisecond) == "hello"
	})
	for read(br, b, 300*time.Millisecond) != "" {
	}
	for i := range 20 {
		b.Write(fmt.Appendf(nil, "m%d\x00", i))
	}
	for i := range 20 {
		if got := read(ar, a, waitTimeout); got != fmt.Sprintf("m%d", i) {
			t.Fatalf("a got %q, want m%d", got, i)
		}
	}
	a.Write([]byte(`<passerelle:nick name="ann"/>` + "\x00"))
	if got := read(ar, a, waitTimeout); got != `<passerelle:nick name="ann"/>` {
		t.Fatalf("nick: %q", got)
	}
	testutil.Eventually(t, "who across nodes", waitTimeout, func() bool {
		b.Write([]byte(`<passerelle:who/>` + "\x00"))
		return read(br, b, waitTimeout) == `<passerelle:members room="default" count="2"><passerelle:member name="ann"/></passerelle:members>`
	})
	b.Write([]byte(`<passerelle:nick name="ANN"/>` + "\x00"))
	if got, want := read(br, b, waitTimeout), `<passerelle:error code="nick-taken" command="nick">nickname &#34;ANN&#34; is taken (&#34;ann&#34; reads the same)</passerelle:error>`; got != want {
		t.Fatalf("nick on node 1: %q, want %q", got, want)
	}
	// The link's state and counters on the admin listener: node 1 took
	// the 20 messages its client sent to the other node, node 0 took them.
	base := adminURL(t, nodes[0])
	fams := scrape(t, base)
	if v := value(t, fams, "passerelle_cluster_connected"); v != 1 {
		t.Errorf("passerelle_cluster_connected %v, want 1", v)
	}
	if v := value(t, fams, "passerelle_cluster_messages_total", "direction", "in"); v < 20 {
		t.Errorf("node 0 took %v messages from the other node, want at least the 20 sent", v)
	}
	if v := value(t, fams, "passerelle_cluster_dropped_total", "reason", "buffer_full"); v != 0 {
		t.Errorf("passerelle_cluster_dropped_total{reason=buffer_full} %v, want 0", v)
	}
	if v := value(t, fams, "passerelle_cluster_degraded"); v != 0 {
		t.Errorf("passerelle_cluster_degraded %v with both nodes up, want 0", v)
	}
	if code, body := testutil.HTTPGet(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz with the link up: %d %s", code, body)
	}
	// Node 1 stops: two nodes, the bucket of nicknames has no majority
	// left, and node 0 says so.
	if err := nodes[1].stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	const degraded = `{"listener":"cluster","service":"cluster","reason":"cluster_degraded","detail":"the bucket of nicknames and members has no majority: nicknames are checked on this node only"}`
	testutil.EventuallyReport(t, waitTimeout, func() bool {
		code, body := testutil.HTTPGet(t, base+"/readyz")
		return code == 503 && strings.Contains(body, degraded)
	}, func() string {
		code, body := testutil.HTTPGet(t, base+"/readyz")
		return fmt.Sprintf("/readyz: %d %s", code, body)
	})
	if v := value(t, scrape(t, base), "passerelle_cluster_degraded"); v != 1 {
		t.Errorf("passerelle_cluster_degraded %v without a majority, want 1", v)
	}
	if err := nodes[0].stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if !strings.Contains(nodes[0].errOut.String(), "cluster link started") {
		t.Errorf("no cluster line in the log:\n%s", nodes[0].errOut.String())
	}
}

func TestServeClusterConfigErrors(t *testing.T) {
	dir := t.TempDir()
	yaml := `listeners:
  - address: 127.0.0.1:0
    service: chat
    tls: {mode: off}
cluster:
  embedded: true
  listen: 0.0.0.0:6222
  routes: [nats-route://10.0.0.2:6222, nats-route://127.0.0.1:6222]
`
	file := writeConfig(t, dir, yaml)
	_, _, err := runCLI(t, "--data-dir", dir, "--config", file, "serve")
	want := []string{
		"cluster.listen: 0.0.0.0:6222 takes routes from other machines and routes are not encrypted: set cluster.tls.cert_file, cluster.tls.key_file and cluster.tls.ca_file, or listen on loopback (127.0.0.1:6222)",
		"cluster.routes[0]: nats-route://10.0.0.2:6222 leaves this machine and routes are not encrypted: set cluster.tls.cert_file, cluster.tls.key_file and cluster.tls.ca_file (every node's certificate signed by that CA), or keep every route on loopback",
		"cluster.routes[1]: nats-route://127.0.0.1:6222 is this node's own cluster.listen address; list the other nodes only",
	}
	if err == nil || err.Error() != "configuration:\n"+strings.Join(want, "\n") {
		t.Fatalf("error:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}

	// An external NATS that cannot be reached at start.
	addr := testutil.ClosedAddr(t).String()
	yaml = fmt.Sprintf("listeners:\n  - {address: 127.0.0.1:0, service: chat, tls: {mode: off}}\ncluster:\n  nats: [nats://%s]\n  typo: 1\n", addr)
	writeConfig(t, dir, yaml)
	if _, _, err := runCLI(t, "--data-dir", dir, "--config", file, "serve"); err == nil || !strings.Contains(err.Error(), "cluster.typo") {
		t.Fatalf("unknown key: %v", err)
	}
	yaml = strings.Replace(yaml, "  typo: 1\n", "", 1)
	writeConfig(t, dir, yaml)
	_, _, err = runCLI(t, "--data-dir", dir, "--config", file, "serve")
	wantErr := "cluster: cannot reach NATS at nats://" + addr + ": nats: no servers available for connection (is cluster.nats right, and the server up?)"
	if err == nil || err.Error() != wantErr {
		t.Fatalf("error:\n%v\nwant:\n%s", err, wantErr)
	}
}

// TestClusterExampleConfig checks configs/cluster.yaml: every key known,
// and a cluster section serve accepts.
func TestClusterExampleConfig(t *testing.T) {
	cfg := loadExample(t, "cluster.yaml")
	if !cfg.Cluster.Embedded || len(cfg.Cluster.Routes) != 2 || cfg.Cluster.TLS.CertFile == "" {
		t.Fatalf("cluster section: %+v", cfg.Cluster)
	}
}

// clusterProcess is a `passerelle serve` process of an embedded cluster.
type clusterProcess struct {
	cmd         *exec.Cmd
	out, errOut *testutil.Buffer
	chat, admin string // the chat listener's address, the admin base URL
	exited      chan error
}

// startClusterProcess runs bin with the configuration file and waits until
// it prints its chat and admin listeners.
func startClusterProcess(t *testing.T, bin, config string) *clusterProcess {
	t.Helper()
	p := &clusterProcess{out: &testutil.Buffer{}, errOut: &testutil.Buffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(bin, "--config", config, "serve")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.errOut
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("%s: stdout:\n%s\nlog:\n%s", config, p.out, p.errOut)
		}
	})
	testutil.Eventually(t, "serve to listen", waitTimeout, func() bool {
		select {
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("serve ended early: %v\n%s", err, p.errOut)
		default:
		}
		return listenLine.MatchString(p.out.String()) && adminLine.MatchString(p.out.String())
	})
	p.chat = listenLine.FindStringSubmatch(p.out.String())[2]
	m := adminLine.FindStringSubmatch(p.out.String())
	p.admin = m[2] + "://" + m[1]
	return p
}

// TestBinaryClusterSIGTERMFreesNickname runs three `passerelle serve`
// processes of the real binary as an embedded cluster on loopback: the
// nickname of a member of a node stopped with SIGTERM is free on another
// node within 2 seconds of the signal, not once its key expires (30 s).
func TestBinaryClusterSIGTERMFreesNickname(t *testing.T) {
	bin := buildBinary(t)
	ports := freeLoopbackPorts(t, 3)
	secret := filepath.Join(t.TempDir(), "cluster.secret")
	var nodes []*clusterProcess
	for i := range 3 {
		var routes []string
		for j, p := range ports {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
			}
		}
		dir := t.TempDir()
		config := fmt.Sprintf(`data_dir: %s
listeners:
  - {address: 127.0.0.1:0, service: chat, tls: {mode: off}}
cluster:
  embedded: true
  name: sigterm
  node_name: node%d
  listen: 127.0.0.1:%d
  routes: [%s]
  secret_file: %s
admin:
  address: 127.0.0.1:0
`, dir, i, ports[i], strings.Join(routes, ", "), secret)
		// The first node makes the secret before the others read it.
		nodes = append(nodes, startClusterProcess(t, bin, writeConfig(t, dir, config)))
	}
	// Ready: the bucket of nicknames has its three replicas' majority.
	for i, n := range nodes {
		testutil.EventuallyReport(t, 2*waitTimeout, func() bool { code, _ := testutil.HTTPGet(t, n.admin+"/readyz"); return code == 200 },
			func() string {
				code, body := testutil.HTTPGet(t, n.admin+"/readyz")
				return fmt.Sprintf("node %d /readyz: %d %s", i, code, body)
			})
	}
	type client struct {
		c net.Conn
		r *bufio.Reader
	}
	ask := func(cl client, msg string) string {
		t.Helper()
		cl.c.SetDeadline(time.Now().Add(waitTimeout))
		if _, err := cl.c.Write([]byte(msg + "\x00")); err != nil {
			t.Fatal(err)
		}
		s, err := cl.r.ReadString(0)
		if err != nil {
			t.Fatalf("answer to %s: %v", msg, err)
		}
		return strings.TrimSuffix(s, "\x00")
	}
	dial := func(p *clusterProcess) client {
		c, err := net.Dial("tcp", p.chat)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return client{c, bufio.NewReader(c)}
	}
	const nick = `<passerelle:nick name="carol"/>`
	const taken = `<passerelle:error code="nick-taken" command="nick">nickname &#34;carol&#34; is taken</passerelle:error>`
	carol, other, third := dial(nodes[0]), dial(nodes[1]), dial(nodes[2])
	if got := ask(carol, nick); got != nick {
		t.Fatalf("nick on node 0: %q", got)
	}
	if got := ask(other, nick); got != taken {
		t.Fatalf("nick on node 1 while node 0 holds it: %q, want %q", got, taken)
	}

	if err := nodes[0].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Freed by the leaving node's deletion, not by its keys' expiry: node 1
	// gets the nickname through the bucket well within cluster.ttl (30s by
	// default, one and a half times the wait below), node 2 is then
	// refused, and node 0's log below says the keys were deleted. While
	// the bucket elects a new leader (node 0 may have led it), a claim it
	// cannot answer within two seconds is granted by the node alone: when
	// both nodes got it so, both give it back and ask again.
	const wait = 2 * waitTimeout
	if wait >= cluster.DefaultTTL {
		t.Fatalf("a wait of %v does not tell deletion from expiry (cluster.ttl %v)", wait, cluster.DefaultTTL)
	}
	sent := time.Now()
	var free time.Duration
	for free == 0 {
		if time.Since(sent) > wait {
			t.Fatalf("nickname of the node stopped by SIGTERM not held through the bucket by another node after %v, want it well within cluster.ttl (%v)", time.Since(sent), cluster.DefaultTTL)
		}
		switch got := ask(other, nick); got {
		case taken:
			time.Sleep(20 * time.Millisecond)
		case nick:
			switch got := ask(third, nick); got {
			case taken: // node 1 holds it in the bucket
				free = time.Since(sent)
			case nick: // each node granted it alone
				other.c.Close()
				third.c.Close()
				other, third = dial(nodes[1]), dial(nodes[2])
				time.Sleep(100 * time.Millisecond)
			default:
				t.Fatalf("nick on node 2 once node 1 took it: %q, want %q", got, taken)
			}
		default:
			t.Fatalf("nick on node 1 after SIGTERM to node 0: %q", got)
		}
	}
	t.Logf("nickname held through the bucket on node 1 %v after SIGTERM to node 0", free)
	select {
	case err := <-nodes[0].exited:
		if err != nil {
			t.Fatalf("node 0 exited with %v after SIGTERM", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("node 0 did not exit after SIGTERM")
	}
	if log := nodes[0].errOut.String(); strings.Contains(log, "cluster keys not deleted on leaving") || !strings.Contains(log, "cluster link stopped") {
		t.Fatalf("node 0's log after SIGTERM:\n%s", log)
	}
}
