//go:build !linux

package readiness

import "net"

// Poller is Linux's only; see the package comment.
type Poller struct{}

// Wait is one armed connection.
type Wait struct{}

// NewPoller returns ErrUnsupported here.
func NewPoller() (*Poller, error) { return nil, ErrUnsupported }

// Arm returns ErrUnsupported here.
func (p *Poller) Arm(net.Conn, func()) (*Wait, error) { return nil, ErrUnsupported }

// Disarm reports false here.
func (w *Wait) Disarm() bool { return false }

// Wake reports false here.
func (w *Wait) Wake() bool { return false }

// Close does nothing here.
func (p *Poller) Close() error { return nil }
