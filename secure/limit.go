package secure

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/passerelle/passerelle/internal/ratelog"
)

// Defaults of a Limiter.
const (
	// DefaultMaxConns bounds the connections a Limiter admits at once.
	DefaultMaxConns = 10000
	// DefaultMaxConnsPerAddress bounds the connections from one IP address:
	// a tenth of DefaultMaxConns, room for a classroom or an office behind
	// one NAT address or one load balancer without the PROXY protocol, far
	// enough below DefaultMaxConns that no single address takes every slot.
	DefaultMaxConnsPerAddress = DefaultMaxConns / 10
)

// Limiter bounds the connections served at once, in all and per client IP
// address. One Limiter can be shared by several Servers (the certificate
// testbed's ports share one); a Server without one makes its own from
// ServerConfig.MaxConns and MaxConnsPerAddress.
//
// A connection over the per-address limit is closed at once. A connection
// over the overall limit waits, accepted but unread, until a slot frees,
// and its listener accepts no other meanwhile: further clients wait in the
// kernel's listen backlog. Both say so in the log through internal/ratelog,
// at most once every ratelog.DefaultEvery per kind, the line after a
// quiet spell counting the clients held back (suppressed=N).
type Limiter struct {
	slots   chan struct{}
	perAddr int
	log     *ratelog.Logger

	mu     sync.Mutex
	byAddr map[string]int
}

// NewLimiter returns a Limiter admitting maxConns connections at once, at
// most perAddress of them from one IP address. Zero or negative values take
// the defaults: DefaultMaxConns, and a tenth of maxConns (at least one) per
// address, so that one address never holds every slot; perAddress is capped
// at maxConns. log receives the refusal lines; nil discards them.
func NewLimiter(maxConns, perAddress int, log *slog.Logger) *Limiter {
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	if perAddress <= 0 {
		perAddress = max(1, maxConns/10)
	}
	perAddress = min(perAddress, maxConns)
	return &Limiter{
		slots:   make(chan struct{}, maxConns),
		perAddr: perAddress,
		log:     ratelog.New(log, 0),
		byAddr:  make(map[string]int),
	}
}

// MaxConns is the overall limit.
func (l *Limiter) MaxConns() int { return cap(l.slots) }

// MaxConnsPerAddress is the per-address limit.
func (l *Limiter) MaxConnsPerAddress() int { return l.perAddr }

// ErrTooManyFromAddress is the refusal of a connection over the
// per-address limit.
var ErrTooManyFromAddress = fmt.Errorf("secure: too many connections from one address")

// admit takes a slot for a connection from addr. It returns at once with
// ErrTooManyFromAddress when that address is at its limit, waits while the
// overall limit is reached, and returns ctx's error if ctx ends first. On
// success the caller must call the returned release exactly once, when the
// connection ends.
func (l *Limiter) admit(ctx context.Context, addr net.Addr, listenAddr string) (release func(), err error) {
	releaseAddr, err := l.admitAddress(addr, listenAddr)
	if err != nil {
		return nil, err
	}
	releaseSlot, err := l.admitSlot(ctx, listenAddr)
	if err != nil {
		releaseAddr()
		return nil, err
	}
	return func() { releaseSlot(); releaseAddr() }, nil
}

// admitAddress counts a connection from addr against the per-address limit
// only, or returns ErrTooManyFromAddress (with the rate-limited log line).
// It is admit's first half, for a connection whose address is known only
// after it has taken its slot (one behind a PROXY protocol balancer). The
// returned release may be called more than once.
func (l *Limiter) admitAddress(addr net.Addr, listenAddr string) (release func(), err error) {
	ip := addrKey(addr)
	l.mu.Lock()
	// A per-address limit as high as the overall one refuses no one: the
	// address waits for a slot like any other.
	if l.perAddr < cap(l.slots) && l.byAddr[ip] >= l.perAddr {
		l.mu.Unlock()
		l.note("per_address", "connection refused: per-address limit reached",
			"remote_addr", ip, "listen_addr", listenAddr, "limit", l.perAddr)
		return nil, ErrTooManyFromAddress
	}
	l.byAddr[ip]++
	l.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { l.drop(ip) }) }, nil
}

// admitSlot takes one of the overall slots, waiting while none is free, and
// returns ctx's error if ctx ends first. It is admit's second half. The
// returned release may be called more than once.
func (l *Limiter) admitSlot(ctx context.Context, listenAddr string) (release func(), err error) {
	select {
	case l.slots <- struct{}{}:
	default:
		l.note("max_conns", "connection limit reached: new clients wait until a connection ends",
			"listen_addr", listenAddr, "limit", cap(l.slots))
		select {
		case l.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var once sync.Once
	return func() { once.Do(func() { <-l.slots }) }, nil
}

func (l *Limiter) drop(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byAddr[ip] <= 1 {
		delete(l.byAddr, ip)
	} else {
		l.byAddr[ip]--
	}
}

// note logs one refusal of the given kind, within the rate of
// internal/ratelog.
func (l *Limiter) note(kind, msg string, attrs ...any) {
	l.log.Warn(kind, msg, append(attrs, "reason", kind)...)
}

// addrKey is the IP address of a peer, without its port: the unit of the
// per-address limit.
func addrKey(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}
