package policy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"time"
)

// Server answers policy file requests on a master policy listener (port 843
// by Adobe's convention, or any port named in a policy). It reads the
// request, writes the policy and a NUL, and closes; a connection that sends
// anything else, or nothing within ReadTimeout, is closed with a log line.
type Server struct {
	// Policy is the cross-domain-policy document; Default() when nil.
	Policy []byte
	// ReadTimeout bounds the wait for the request. Default 5s.
	ReadTimeout time.Duration
	// WriteTimeout bounds the write of the answer. Default 5s.
	WriteTimeout time.Duration
	// Logger receives one line per connection; nil means no logging.
	Logger *slog.Logger
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// ServeConn handles one connection and closes it. The context cuts the wait
// short.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	log := s.logger().With("remote_addr", conn.RemoteAddr().String())
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	rt := s.ReadTimeout
	if rt <= 0 {
		rt = 5 * time.Second
	}
	prefix, isReq, err := Sniff(conn, rt)
	switch {
	case isReq:
	case err != nil && !errors.Is(err, io.EOF):
		log.Info("policy connection closed", "reason", "read_error", "error", err.Error())
		return
	case len(prefix) == 0:
		log.Info("policy connection closed", "reason", "no_request")
		return
	default:
		log.Info("policy connection closed", "reason", "not_a_policy_request", "first_bytes", string(prefix))
		return
	}
	wt := s.WriteTimeout
	if wt <= 0 {
		wt = 5 * time.Second
	}
	doc := s.Policy
	if doc == nil {
		doc = Default()
	}
	conn.SetWriteDeadline(time.Now().Add(wt))
	if _, err := conn.Write(Response(doc)); err != nil {
		log.Info("policy connection closed", "reason", "write_error", "error", err.Error())
		return
	}
	log.Debug("policy served", "reason", "policy")
}

// Serve accepts connections on ln and serves each in its own goroutine until
// ctx is cancelled (it then returns nil) or ln is closed; it closes ln and
// waits for the handlers before returning. Other accept errors are retried
// with a back-off.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	active := make(chan struct{}, 1024) // bounds concurrent handlers
	var backoff time.Duration
	wait := func() {
		for range cap(active) {
			active <- struct{}{}
		}
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				wait()
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				wait()
				return err
			}
			// Out of file descriptors and the like: back off and retry
			// rather than spin or give up.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logger().Warn("policy accept failed", "error", err.Error(), "retry_in", backoff.String())
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			continue
		}
		backoff = 0
		active <- struct{}{}
		go func() {
			defer func() { <-active }()
			s.ServeConn(ctx, conn)
		}()
	}
}
