package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/protocol/echo"
	"github.com/passerelle/passerelle/protocol/envoie"
	"github.com/passerelle/passerelle/protocol/policy"
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
	link      hub.Link // the cluster link; nil for a single node
}

func newServices(cfg *serveConfig, policyDoc []byte, log *slog.Logger) *services {
	return &services{
		cfg:  cfg,
		log:  log,
		gate: &policy.Gate{Policy: policyDoc, Wait: cfg.Chat.PolicyWait, Logger: log},
	}
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
			Link:         s.link,
			Logger:       s.log,
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

func newChatService(s *services, l *listener) (service, error) {
	relay := s.hub()
	return service{handle: func(ctx context.Context, c *secure.Conn) { relay.ServeConn(hub.WithLogger(ctx, l.log), c) }}, nil
}

func newEchoService(s *services, l *listener) (service, error) {
	e := &echo.Server{Logger: l.log}
	return service{handle: func(ctx context.Context, c *secure.Conn) { e.ServeConn(ctx, c) }}, nil
}

func newEnvoieService(s *services, l *listener) (service, error) {
	e := &envoie.Server{Files: l.assets, Logger: l.log}
	return service{handle: func(ctx context.Context, c *secure.Conn) { e.ServeConn(ctx, c) }}, nil
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
