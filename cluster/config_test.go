package cluster

import (
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/passerelle/passerelle/internal/testutil"
)

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"nothing", Config{},
			"cluster: set embedded: true (with listen and routes) to run NATS in each node, or nats: [URLs] to use an existing NATS system"},
		{"no routes", Config{Embedded: true, Listen: "127.0.0.1:6222", DataDir: dir},
			"cluster.routes: an embedded cluster needs the other nodes' route URLs (for example [nats-route://node2:6222, nats-route://node3:6222])"},
		{"route to itself", Config{Embedded: true, Listen: "127.0.0.1:6222", DataDir: dir, Routes: []string{"nats-route://127.0.0.1:6223", "nats-route://localhost:6222"}},
			"cluster.routes[1]: nats-route://localhost:6222 is this node's own cluster.listen address; list the other nodes only"},
		{"listen beyond loopback without TLS", Config{Embedded: true, Listen: "0.0.0.0:6222", DataDir: dir, Routes: []string{"nats-route://127.0.0.1:6223"}},
			"cluster.listen: 0.0.0.0:6222 takes routes from other machines and routes are not encrypted: set cluster.tls.cert_file, cluster.tls.key_file and cluster.tls.ca_file, or listen on loopback (127.0.0.1:6222)"},
		{"listen on an address without TLS", Config{Embedded: true, Listen: "10.0.0.1:6222", DataDir: dir, Routes: []string{"nats-route://127.0.0.1:6223"}, SecretFile: "s"},
			"cluster.listen: 10.0.0.1:6222 takes routes from other machines and routes are not encrypted: set cluster.tls.cert_file, cluster.tls.key_file and cluster.tls.ca_file, or listen on loopback (127.0.0.1:6222)"},
		{"route TLS without CA", Config{Embedded: true, Listen: "127.0.0.1:6222", DataDir: dir, Routes: []string{"nats-route://127.0.0.1:6223"}, TLS: TLS{CertFile: "n.pem", KeyFile: "n.key"}},
			"cluster.tls: an embedded cluster's routes need cert_file, key_file and ca_file together"},
		{"secret with external NATS", Config{NATS: []string{"nats://127.0.0.1:4222"}, SecretFile: "s"},
			"cluster.secret_file: is for an embedded NATS cluster (embedded: true); an existing NATS system takes cluster.creds"},
		{"routes off the machine without TLS", Config{Embedded: true, Listen: "127.0.0.1:6222", DataDir: dir, Routes: []string{"node2.example:6222"}},
			"cluster.routes[0]: node2.example:6222 leaves this machine and routes are not encrypted: set cluster.tls.cert_file, cluster.tls.key_file and cluster.tls.ca_file (every node's certificate signed by that CA), or keep every route on loopback"},
		{"both modes", Config{Embedded: true, NATS: []string{"nats://127.0.0.1:4222"}},
			"cluster: embedded is true and cluster.nats is set: choose one, an embedded NATS cluster (embedded, listen, routes) or an existing NATS system (nats)"},
		{"bad listen", Config{Embedded: true, Listen: "6222", DataDir: dir, Routes: []string{"127.0.0.1:6223"}},
			`cluster.listen: "6222" is not host:port (this node's route address, for example 0.0.0.0:6222)`},
		{"bad name", Config{Name: "a.b", NATS: []string{"nats://127.0.0.1:4222"}},
			`cluster.name: "a.b" may hold only letters, digits, '-' and '_' (at most 64)`},
		{"route without port", Config{Embedded: true, Listen: "127.0.0.1:6222", DataDir: dir, Routes: []string{"nats-route://node2"}},
			`cluster.routes[0]: "nats-route://node2" needs a host and a port`},
		{"listen with external NATS", Config{NATS: []string{"nats://127.0.0.1:4222"}, Listen: "127.0.0.1:6222"},
			"cluster: listen and routes are for an embedded NATS cluster (embedded: true), not with cluster.nats"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Start(tt.cfg)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Start error:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestUnreachableNATS(t *testing.T) {
	addr := testutil.ClosedAddr(t).String()
	_, err := Start(Config{NATS: []string{"nats://" + addr}})
	want := "cluster: cannot reach NATS at nats://" + addr + ": nats: no servers available for connection (is cluster.nats right, and the server up?)"
	if err == nil || err.Error() != want {
		t.Fatalf("Start error:\n got %v\nwant %s", err, want)
	}
}

func TestRoutesWithTLSAccepted(t *testing.T) {
	// Off-machine routes are accepted once every TLS file is named.
	cfg := Config{Embedded: true, Listen: "0.0.0.0:6222", DataDir: "x", Routes: []string{"nats-route://node2.example:6222"},
		TLS: TLS{CAFile: "ca.pem", CertFile: "node.pem", KeyFile: "node.key"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.TLS.KeyFile = ""
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "cluster.tls: cert_file and key_file go together") {
		t.Fatalf("Validate: %v", err)
	}
}

// TestEmbeddedLogLevels: a route to a node not up yet is retried, and
// logged as a warning, not an error.
func TestEmbeddedLogLevels(t *testing.T) {
	ports := freePorts(t, 2)
	logger, logs := testutil.Logger(t, slog.LevelInfo)
	n, err := Start(Config{Embedded: true, Listen: "127.0.0.1:" + strconv.Itoa(ports[0]), NodeName: "alone", DataDir: t.TempDir(),
		Routes: []string{"127.0.0.1:" + strconv.Itoa(ports[1])}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	testutil.EventuallyContains(t, logs, `level=WARN msg="nats: Error trying to connect to route`, waitTimeout)
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("error lines:\n%s", logs)
	}
	if !strings.Contains(logs.String(), `level=INFO msg="cluster link started" mode=embedded`) {
		t.Fatalf("no start line:\n%s", logs)
	}
}
