package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/internal/ratelog"
)

// Node is this process's place in a cluster: a hub.Link over NATS.
type Node struct {
	cfg    Config
	log    *slog.Logger
	id     string // unique per start: the prefix of every message this node publishes
	prefix string // "passerelle.NAME.room."
	srv    *server.Server
	nc     *nats.Conn
	// natsLog is the embedded server's logger (nil for an external NATS).
	natsLog *natsLogger

	hub atomic.Pointer[hub.Hub]

	relayMu sync.Mutex
	subs    map[string]*nats.Subscription // rooms with members here

	outMu sync.Mutex
	out   map[string]*outPack // messages for the other nodes, by room
	// held are packs kept until this node's key is in the bucket
	// (announced), heldBytes their size.
	held      []heldPack
	heldBytes int
	announced atomic.Bool

	nodes *nodeSet // the other nodes' ids seen in the bucket

	dir *directory

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	st counters
	// degradedLog writes the bucket's majority changes, rate-limited (a
	// flapping route would otherwise write one line per flap).
	degradedLog *ratelog.Logger
	// dropLog rate-limits the lines of messages dropped, on arrival or on
	// their way to the other nodes, one key per kind.
	dropLog *ratelog.Logger
}

var _ hub.Link = (*Node)(nil)

// Start validates cfg, starts the embedded NATS server if cfg.Embedded,
// connects, and returns the node. It returns an error when the
// configuration is wrong or NATS cannot be reached at start; afterwards no
// fault stops it: it reconnects by itself. The bucket of nicknames and
// members is set up in the background (an embedded cluster's JetStream
// needs a majority of its nodes up); until then each node answers for
// itself.
func Start(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Node{
		cfg:    cfg,
		log:    cfg.Logger,
		id:     nuid.Next(),
		prefix: "passerelle." + cfg.Name + ".room.",
		subs:   make(map[string]*nats.Subscription),
		out:    make(map[string]*outPack),
		nodes:  newNodeSet(),
	}
	n.dropLog = ratelog.New(n.log, ratelog.DefaultEvery)
	n.degradedLog = ratelog.New(n.log, ratelog.DefaultEvery)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	opts := []nats.Option{
		nats.Name("passerelle " + n.id),
		nats.NoEcho(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(cfg.ReconnectBuffer),
		nats.DisconnectErrHandler(n.disconnected),
		nats.ReconnectHandler(n.reconnected),
		nats.ErrorHandler(n.asyncError),
	}
	var urls string
	if cfg.Embedded {
		password := randomPassword()
		n.natsLog = newNATSLogger(n.log)
		s, err := startEmbedded(cfg, password, n.natsLog)
		if err != nil {
			return nil, err
		}
		n.srv = s
		opts = append(opts, nats.InProcessServer(s), nats.UserInfo(clientUser, password))
	} else {
		urls = strings.Join(cfg.NATS, ",")
		if cfg.Creds != "" {
			opts = append(opts, nats.UserCredentials(cfg.Creds))
		}
		if cfg.TLS.CAFile != "" {
			opts = append(opts, nats.RootCAs(cfg.TLS.CAFile))
		}
		if cfg.TLS.CertFile != "" {
			opts = append(opts, nats.ClientCert(cfg.TLS.CertFile, cfg.TLS.KeyFile))
		}
		opts = append(opts, nats.Timeout(5*time.Second))
	}
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		if n.srv != nil {
			n.srv.Shutdown()
		}
		if cfg.Embedded {
			return nil, fmt.Errorf("cluster: connect to the embedded NATS server: %w", err)
		}
		return nil, fmt.Errorf("cluster: cannot reach NATS at %s: %w (is cluster.nats right, and the server up?)", urls, err)
	}
	n.nc = nc
	n.dir = newDirectory(n)
	n.wg.Go(n.dir.run)
	n.wg.Go(n.dir.probe)
	mode := "external"
	if cfg.Embedded {
		mode = "embedded"
	}
	n.log.Info("cluster link started", "mode", mode, "node_id", n.id, "cluster", cfg.Name)
	if cfg.Embedded && len(cfg.Routes) == 1 {
		// Two replicas: a majority is both.
		n.log.Warn("cluster of two nodes: nicknames stay unique across nodes only while both run; the loss of either leaves the bucket of nicknames and members without a majority (a third node keeps them through the loss of one)",
			"node_id", n.id)
	}
	return n, nil
}

// ID returns the node's id, unique per start.
func (n *Node) ID() string { return n.id }

// Attach implements hub.Link.
func (n *Node) Attach(h *hub.Hub) { n.hub.Store(h) }

// WaitReady waits until the bucket of nicknames and members is usable.
func (n *Node) WaitReady(ctx context.Context) error {
	select {
	case <-n.dir.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cluster: bucket of nicknames and members not ready: %w", ctx.Err())
	}
}

// Close leaves the cluster: it frees this node's nicknames and members at
// once (best effort), closes the connection and stops the embedded server.
func (n *Node) Close() error {
	n.flushRelay()
	n.cancel()
	n.wg.Wait()
	n.dir.leave()
	n.nc.Close()
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
	n.log.Info("cluster link stopped", "node_id", n.id)
	return nil
}

// Degraded reports whether the bucket of nicknames and members is out of
// use now: not set up yet, or without a majority of its replicas.
func (n *Node) Degraded() bool { return n.dir.degraded.Load() }

// Connected reports whether the node is connected to NATS now.
func (n *Node) Connected() bool { return n.nc.IsConnected() }

func (n *Node) disconnected(_ *nats.Conn, err error) {
	if n.ctx.Err() != nil {
		return // closing
	}
	n.st.disconnects.Add(1)
	attrs := []any{"node_id", n.id}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	n.log.Warn("cluster link down: serving local members only, buffering for the other nodes while reconnecting", attrs...)
}

func (n *Node) reconnected(nc *nats.Conn) {
	n.log.Info("cluster link up again", "node_id", n.id, "nats", nc.ConnectedUrlRedacted(),
		"dropped_while_down", n.st.bufferDropped.Load())
	n.dir.kick(true)
}

// asyncError hears of subscriptions that fell behind (nats.go then drops
// their messages) and other asynchronous errors.
func (n *Node) asyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrSlowConsumer) && sub != nil {
		n.log.Warn("cluster subscription falling behind: messages from other nodes dropped", "subject", sub.Subject, "node_id", n.id)
		return
	}
	n.log.Warn("cluster link error", "node_id", n.id, "error", err.Error())
}

// Changed implements hub.Link: the worker rewrites the room's key.
func (n *Node) Changed(room string) {
	n.dir.markDirty(room)
	n.dir.kick(false)
}

// ClaimNick implements hub.Link.
func (n *Node) ClaimNick(key, name string) (string, bool, error) { return n.dir.claim(key, name) }

// ReleaseNick implements hub.Link.
func (n *Node) ReleaseNick(key string) { n.dir.release(key) }

// Members implements hub.Link.
func (n *Node) Members(room string) ([]string, int, error) { return n.dir.members(room) }
