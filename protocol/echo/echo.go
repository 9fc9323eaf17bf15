package echo

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/passerelle/passerelle/internal/ratelog"
)

// Greeting is sent on connect (the OpenFL/AIR socket chapter,
// seed 001: socket.writeUTFBytes("Connected.")).
const Greeting = "Connected."

// Prefix starts every echo (the OpenFL/AIR socket chapter, seed 001:
// message = "Echo -- " + message).
const Prefix = "Echo -- "

// Defaults of the Server's zero-valued fields.
const (
	DefaultBufferSize   = 4096
	DefaultWriteTimeout = 10 * time.Second
)

// Server answers echo connections. The zero value is usable.
type Server struct {
	// BufferSize is the largest chunk echoed at once (default
	// DefaultBufferSize).
	BufferSize int
	// WriteTimeout bounds each write (default DefaultWriteTimeout).
	WriteTimeout time.Duration
	// IdleTimeout, when positive, closes a connection that sends nothing
	// for that long (reason idle_timeout). Zero keeps it until the client
	// leaves.
	IdleTimeout time.Duration
	// Logger receives a line per closed connection, rate-limited to one
	// per reason every ratelog.DefaultEvery with the count of the others
	// (a client connecting in a loop must not fill the log); nil means
	// none.
	Logger *slog.Logger

	peerLog ratelog.Lazy // the per-client lines, rate-limited
}

// ServeConn serves one connection until the client leaves or ctx is
// cancelled, and closes it. The connection is the client's own: already
// through TLS and past the policy-file check, both done by the listener
// (package secure), so the greeting goes out at once.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) {
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	reason, err := s.serve(conn)
	stop()
	if ctx.Err() != nil {
		reason, err = "shutdown", nil
	}
	if reason == "write_error" {
		// A write cut short may have left half a TLS record on the wire:
		// end the connection without a close alert behind it.
		hardClose(conn)
	} else {
		_ = conn.Close()
	}
	attrs := []any{"remote_addr", conn.RemoteAddr().String(), "reason", reason}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	s.peerLog.Get(s.Logger).Info("echo_closed_"+reason, "echo client closed", attrs...)
}

func (s *Server) serve(conn net.Conn) (string, error) {
	size := s.BufferSize
	if size <= 0 {
		size = DefaultBufferSize
	}
	buf := make([]byte, len(Prefix)+size)
	copy(buf, Prefix)
	chunk := buf[len(Prefix):]

	if err := s.write(conn, []byte(Greeting)); err != nil {
		return "write_error", err
	}
	for {
		if s.IdleTimeout > 0 {
			if err := conn.SetReadDeadline(time.Now().Add(s.IdleTimeout)); err != nil {
				return "read_error", err
			}
		}
		n, err := conn.Read(chunk)
		if n > 0 {
			if werr := s.write(conn, buf[:len(Prefix)+n]); werr != nil {
				return "write_error", werr
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			return "client_closed", nil
		case s.IdleTimeout > 0 && errors.Is(err, os.ErrDeadlineExceeded):
			return "idle_timeout", nil
		default:
			return "read_error", err
		}
	}
}

func (s *Server) write(conn net.Conn, b []byte) error {
	timeout := s.WriteTimeout
	if timeout <= 0 {
		timeout = DefaultWriteTimeout
	}
	if err := conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err := conn.Write(b)
	return err
}

// hardClose ends conn at once: through its Abort method when it has one
// (the listener's connections do: no TLS close alert after a cut record),
// otherwise through Close.
func hardClose(conn net.Conn) {
	if a, ok := conn.(interface{ Abort() error }); ok {
		_ = a.Abort()
		return
	}
	_ = conn.Close()
}
