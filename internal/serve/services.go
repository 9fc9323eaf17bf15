package serve

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
	"github.com/passerelle/passerelle/internal/ratelog"
	"github.com/passerelle/passerelle/metrics"
	"github.com/passerelle/passerelle/protocol/echo"
	"github.com/passerelle/passerelle/protocol/envoie"
	"github.com/passerelle/passerelle/protocol/policy"
	"github.com/passerelle/passerelle/secure"
	"github.com/passerelle/passerelle/web"
)

// Service kinds a listener can run.
const (
	serviceChat   = "chat"
	serviceEnvoie = "envoie"
	serviceEcho   = "echo"
	// servicePolicy only answers the policy-file request (the master
	// policy listener of policy.listen, usually :843).
	servicePolicy = "policy"
	// serviceAdmin is the admin listener (admin.address): metrics, health
	// and profiles over HTTP(S).
	serviceAdmin = "admin"
)

// service is what a listener runs: a handler for each connection past its
// handshake, and optionally a Preface (before TLS), the protocols it adds
// to its certificate source's ALPN list, something to close, and whether
// it keeps a connection limit of its own rather than serve's shared one.
type service struct {
	handle     func(context.Context, *secure.Conn)
	preface    func(context.Context, net.Conn) (net.Conn, bool)
	alpn       []string
	closer     io.Closer
	ownLimiter bool
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
		serviceAdmin:  newAdminService,
	}
}

// serviceNames lists the service names for messages: "chat, echo, envoie
// or policy".
func serviceNames() string {
	var names []string
	for n := range serviceTable() {
		if n != serviceAdmin { // admin.address, not a listeners entry
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// services is what the listeners' services share: the configuration, the
// policy-file Gate (run before the handshake of a TLS listener, and by every
// listener's front door after it), and the chat hub, made when a chat
// listener first needs it so that every chat listener relays into the same
// rooms.
type services struct {
	cfg  *Config
	log  *slog.Logger
	gate *policy.Gate

	relayOnce sync.Once
	relay     *hub.Hub
	metrics   *metrics.Metrics // set by watchMetrics; nil: no metrics
	admin     *adminParts      // set by watchMetrics; nil: no admin listener
	link      hub.Link         // the cluster link; nil for a single node
}

func newServices(cfg *Config, policyDoc []byte, log *slog.Logger) *services {
	return &services{
		cfg:  cfg,
		log:  log,
		gate: &policy.Gate{Policy: policyDoc, Wait: cfg.Chat.PolicyWait, Logger: log, PeerLog: ratelog.New(log, 0)},
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

// frontDoor is the handler of a listener: each connection, past its
// handshake, goes through the one classification step (web.Door), which
// answers policy requests and refuses HTTP/2 itself, and hands HTTP
// clients to httpd (nil: the listener serves no browser) and the others to
// the raw service through admit.
func (s *services) frontDoor(l *listener, httpd *web.ConnServer, admit web.Admit) func(context.Context, *secure.Conn) {
	door := &web.Door{
		Gate:        s.gate,
		Wait:        s.cfg.Chat.PolicyWait,
		LineTimeout: s.cfg.Limits.HandshakeTimeout,
		Log:         ratelog.New(l.log, 0),
	}
	return func(ctx context.Context, c *secure.Conn) {
		alpn := ""
		if cs := c.TLS(); cs != nil {
			alpn = cs.NegotiatedProtocol
		}
		door.Serve(ctx, c, alpn, httpd, admit)
	}
}

// preface is what a service listener runs before its TLS handshake: the
// policy request in clear on a TLS port (Flash asks on the port it then
// uses for TLS). A plain listener's clients go to the door at once
// (frontDoor), where the request is told apart with everything else.
func (s *services) preface(l *listener) func(context.Context, net.Conn) (net.Conn, bool) {
	if l.plain() {
		return nil
	}
	return s.gate.Check
}

// browserALPN is what a chat or asset listener adds to its certificate
// source's protocols: browsers negotiate HTTP/1.1 and are answered as such
// (WebSocket, the chat page, HTTPS assets).
var browserALPN = []string{web.ALPN}

// afterDoor is the web.Admit of a service that keeps no member list: its
// client is served once it is known to be raw, and nothing is done before.
func afterDoor(serve func(context.Context, net.Conn)) web.Admit {
	return func(ctx context.Context, c net.Conn) (func(), func()) {
		return func() { serve(ctx, c) }, func() {}
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
			// Zero: WriteTimeout, the hub's own default.
			SlowReceiverTimeout: c.SlowReceiverTimeout,
			ParkAfter:           parkAfter(c.ParkAfter),
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
	// A chat client is a member of its room from the end of its
	// handshake: what the room relays while the door reads its first
	// bytes is kept for it, and written once it is known to be raw.
	admit := func(ctx context.Context, c net.Conn) (func(), func()) {
		a := relay.AdmitConn(hub.WithLogger(ctx, l.log), c)
		return a.Serve, a.Leave
	}
	return service{handle: s.frontDoor(l, httpd, admit), preface: s.preface(l), alpn: browserALPN, closer: httpd}, nil
}

func newEchoService(s *services, l *listener) (service, error) {
	e := &echo.Server{Logger: l.log}
	return service{handle: s.frontDoor(l, nil, afterDoor(e.ServeConn)), preface: s.preface(l)}, nil
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
	return service{handle: s.frontDoor(l, httpd, afterDoor(e.ServeConn)), preface: s.preface(l), alpn: browserALPN, closer: httpd}, nil
}

// newPolicyService answers the policy request and nothing else: its Gate
// waits the whole read timeout for a request, and a client handed on is
// not a requester and is closed.
func newPolicyService(s *services, l *listener) (service, error) {
	gate := *s.gate
	gate.Wait = policy.DefaultReadTimeout
	return service{
		preface: gate.Check,
		handle: func(ctx context.Context, c *secure.Conn) {
			s.gate.PeerLog.LogTo(ctx, l.log, slog.LevelInfo, "policy_not_request", "policy connection closed: not a policy request", "remote_addr", c.RemoteAddr().String())
		},
	}, nil
}

// parkAfter is chat.park_after as hub.Config takes it: the key's 0 (never)
// is the hub's "below zero".
func parkAfter(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
