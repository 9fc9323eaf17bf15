package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/passerelle/passerelle/secure"
)

// clientDial is where and how chat and get connect.
type clientDial struct {
	addr       string
	dataDir    string // the local CA trusted besides the system roots
	caFile     string // --ca, trusted besides them
	serverName string // --servername; "" for the address's host
	plain      bool   // TCP without TLS (--plain)
	timeout    time.Duration
}

// dial is the one client dial of chat and get: a TLS connection trusting
// the system roots, the local CA of the data folder and --ca (or, with
// --plain, TCP), opened within --timeout. Its failures are worded once,
// for them and for check: connectFailure, handshakeFailure.
func (a *app) dial(ctx context.Context, d clientDial) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	timedOut := func(err error) bool {
		return errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil
	}
	if d.plain {
		var nd net.Dialer
		c, err := nd.DialContext(dctx, "tcp", d.addr)
		if err != nil {
			return nil, connectFailure(d.addr, err, timedOut(err), d.timeout)
		}
		return c, nil
	}
	roots, err := clientRoots(d.dataDir, d.caFile)
	if err != nil {
		return nil, err
	}
	c, err := secure.Dial(dctx, d.addr, secure.ClientConfig{ServerName: d.serverName, RootCAs: roots, Logger: a.log})
	if err != nil {
		var he *secure.HandshakeError
		switch {
		case errors.As(err, &he) && timedOut(err):
			return nil, fmt.Errorf("connect to %s: the TLS handshake did not finish within %s (--timeout)", d.addr, d.timeout)
		case errors.As(err, &he):
			return nil, handshakeFailure(d.addr, he)
		}
		return nil, connectFailure(d.addr, err, timedOut(err), d.timeout)
	}
	return c, nil
}

// connectFailure is what passerelle's clients (check, chat, get) say when
// no TCP connection was made: timedOut when --timeout ran out first.
func connectFailure(addr string, err error, timedOut bool, timeout time.Duration) error {
	if timedOut {
		return fmt.Errorf("connect to %s: no connection within %s (--timeout)", addr, timeout)
	}
	return fmt.Errorf("connect to %s: %w", addr, err)
}
