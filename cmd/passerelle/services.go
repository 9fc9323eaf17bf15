package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/metrics"
	"github.com/passerelle/passerelle/protocol/echo"
	"github.com/passerelle/passerelle/protocol/envoie"
	"github.com/passerelle/passerelle/protocol/policy"
	"github.com/passerelle/passerelle/protocol/web"
	"github.com/passerelle/passerelle/secure"
)

// Service kinds a listener can run.
const (
	serviceChat   = "chat"
	serviceEnvoie = "envoie"
	serviceEcho   = "echo"
	// servicePolicy only answers the policy-file request (the master
	// policy listener of policy.listen, usually :843).
	servicePolicy = "policy"
)

// service is what a listener runs after the handshake: a handler for each
// connection, and optionally its own Preface and something to close.
type service struct {
	handle  func(context.Context, *secure.Conn)
	preface func(context.Context, net.Conn) (net.Conn, bool)
	closer  io.Closer
}

// serviceMaker builds a listener's service.
type serviceMaker func(s *services, l *listener) (service, error)

// serviceTable maps each service name of the configuration to its maker:
// a new service is one row here and one maker below.
func serviceTable() map[string]serviceMaker {
	return map[string]serviceMaker{
		serviceChat:   newChatService,
		serviceEnvoie: newEnvoieService,
		serviceEcho:   newEchoService,
		servicePolicy: newPolicyService,
	}
}

// serviceNames lists the service names for messages: "chat, echo, envoie
// or policy".
func serviceNames() string {
	var names []string
	for n := range serviceTable() {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// services is what the listeners' services share: the configuration, the
// policy-file Gate every listener runs first, and the chat hub, made when a
// chat listener first needs it so that every chat listener relays into the
// same rooms.
type services struct {
	cfg  *serveConfig
	log  *slog.Logger
	gate *policy.Gate

	relayOnce sync.Once
	relay     *hub.Hub
	metrics   *metrics.Metrics // set by startAdmin; nil: no metrics
	link      hub.Link         // the cluster link; nil for a single node
}

func newServices(cfg *serveConfig, policyDoc []byte, log *slog.Logger) *services {
	return &services{
		cfg:  cfg,
		log:  log,
		gate: &policy.Gate{Policy: policyDoc, Wait: cfg.Chat.PolicyWait, Logger: log},
	}
}

// origins is the websocket.origins check of a listener, logging to its
// logger (validate has checked the list).
func (s *services) origins(l *listener) (*web.Origins, error) {
	o, err := web.NewOrigins(s.cfg.WebSocket.Origins, l.log)
	if err != nil {
		return nil, fmt.Errorf("websocket.%w", err)
	}
	return o, nil
}

// browsersTo is the handler of a listener that serves browsers beside its
// raw protocol: HTTP clients go to httpd, every other client to raw.
func (s *services) browsersTo(httpd *web.ConnServer, raw func(context.Context, net.Conn)) func(context.Context, *secure.Conn) {
	return func(ctx context.Context, c *secure.Conn) {
		next, isHTTP := s.sniff(c)
		if isHTTP {
			httpd.ServeConn(ctx, next)
			return
		}
		raw(ctx, next)
	}
}

// sniff tells a browser from a raw client on a connection past its
// handshake and policy check (web.Sniff). A TLS client that negotiated no
// ALPN may still send an HTTP request line: its first bytes are waited for
// as long as a plain client's are by the policy Gate. On a plain listener
// the Gate has waited already: only what it read is looked at.
func (s *services) sniff(c *secure.Conn) (net.Conn, bool) {
	if cs := c.TLS(); cs != nil {
		return web.Sniff(c, cs.NegotiatedProtocol, s.cfg.Chat.PolicyWait)
	}
	wait := time.Duration(0)
	if _, sending := c.Conn.(*policy.Prefixed); sending {
		// The client is sending: let the rest of a method in.
		wait = s.cfg.Chat.PolicyWait
	}
	return web.Sniff(c, "", wait)
}

// hub returns the chat hub, made on first use.
func (s *services) hub() *hub.Hub {
	s.relayOnce.Do(func() {
		c := s.cfg.Chat
		s.relay = hub.New(hub.Config{
			MaxMessage:   c.MaxMessage,
			QueueBytes:   c.QueueBytes,
			FloodRate:    c.FloodRate,
			FloodBurst:   c.FloodBurst,
			WriteTimeout: c.WriteTimeout,
			// Zero: WriteTimeout, the hub's own default.
			SlowReceiverTimeout: c.SlowReceiverTimeout,
			Logger:              s.log,
			Observer:            s.metrics.Hub(),
			Link:                s.link,
		})
	})
	return s.relay
}

// close disconnects every chat client; listeners close their own
// connections.
func (s *services) close() {
	if s.relay != nil {
		s.relay.Close()
	}
}

// newChatService is the chat relay: raw clients and WebSocket clients join
// the same rooms; a browser asking for / without an upgrade gets the chat
// page.
func newChatService(s *services, l *listener) (service, error) {
	relay := s.hub()
	origins, err := s.origins(l)
	if err != nil {
		return service{}, err
	}
	httpd := web.NewConnServer(&web.Chat{Hub: relay, Page: web.NewChatPage(), Origins: origins, MaxMessage: s.cfg.Chat.MaxMessage, Logger: l.log, PingInterval: s.cfg.WebSocket.PingInterval}, s.cfg.Limits.HandshakeTimeout, l.log)
	return service{handle: s.browsersTo(httpd, func(ctx context.Context, c net.Conn) {
		relay.ServeConn(hub.WithLogger(ctx, l.log), c)
	}), closer: httpd}, nil
}

func newEchoService(s *services, l *listener) (service, error) {
	e := &echo.Server{Logger: l.log}
	return service{handle: func(ctx context.Context, c *secure.Conn) { e.ServeConn(ctx, c) }}, nil
}

// newEnvoieService is the asset stream: ENVOIE on raw and WebSocket
// clients, and GET /NAME over HTTP(S).
func newEnvoieService(s *services, l *listener) (service, error) {
	e := &envoie.Server{Files: l.assets, Logger: l.log, Observer: s.metrics.Envoie(l.cfg.Address)}
	origins, err := s.origins(l)
	if err != nil {
		return service{}, err
	}
	httpd := web.NewConnServer(&web.Stream{
		Serve:        e.ServeConn,
		Files:        &web.Assets{Files: l.assets, Origins: origins, Logger: l.log},
		Origins:      origins,
		Logger:       l.log,
		PingInterval: s.cfg.WebSocket.PingInterval,
	}, s.cfg.Limits.HandshakeTimeout, l.log)
	return service{handle: s.browsersTo(httpd, e.ServeConn), closer: httpd}, nil
}

// newPolicyService answers the policy request and nothing else: its Gate
// waits the whole read timeout for a request, and a client handed on is
// not a requester and is closed.
func newPolicyService(s *services, l *listener) (service, error) {
	gate := *s.gate
	gate.Wait = policy.DefaultReadTimeout
	return service{
		preface: gate.Check,
		handle: func(_ context.Context, c *secure.Conn) {
			l.log.Info("policy connection closed: not a policy request", "remote_addr", c.RemoteAddr().String())
		},
	}, nil
}
