package echo

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/passerelle/passerelle/protocol/policy"
)

// Greeting is sent on connect (seed 001: socket.writeUTFBytes("Connected.")).
const Greeting = "Connected."

// Prefix starts every echo (seed 001: message = "Echo -- " + message).
const Prefix = "Echo -- "

// Server answers echo connections. The zero value is usable.
type Server struct {
	// Policy is the cross-domain policy answered to a policy request;
	// policy.Default() when nil.
	Policy []byte
	// PolicyWait is how long "Connected." waits for a possible policy
	// request. Default 500ms.
	PolicyWait time.Duration
	// BufferSize is the largest chunk echoed at once. Default 4096.
	BufferSize int
	// HandshakeTimeout bounds the TLS handshake of a *tls.Conn that has not
	// done it yet. Default 10s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds each write. Default 10s.
	WriteTimeout time.Duration
	// IdleTimeout, when positive, closes a connection that sends nothing
	// for that long (reason idle_timeout). Zero keeps it until the client
	// leaves.
	IdleTimeout time.Duration
	// Logger receives one line per closed connection; nil means none.
	Logger *slog.Logger
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// ServeConn serves one connection until the client leaves or ctx is
// cancelled, and closes it.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	reason, err := s.serve(ctx, conn)
	if ctx.Err() != nil {
		reason, err = "shutdown", nil
	}
	attrs := []any{"remote_addr", conn.RemoteAddr().String(), "reason", reason}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	s.logger().Info("echo client closed", attrs...)
}

func (s *Server) serve(ctx context.Context, conn net.Conn) (string, error) {
	if hs, ok := conn.(interface{ HandshakeContext(context.Context) error }); ok {
		hctx, cancel := context.WithTimeout(ctx, orDefault(s.HandshakeTimeout, 10*time.Second))
		err := hs.HandshakeContext(hctx)
		cancel()
		if err != nil {
			return "handshake_failed", err
		}
	}
	size := s.BufferSize
	if size <= 0 {
		size = 4096
	}
	buf := make([]byte, len(Prefix)+max(size, len(policy.Request)))
	copy(buf, Prefix)
	chunk := buf[len(Prefix):]

	// The first chunk decides: the policy request alone, or an echo. It
	// is read whole (not cut at the request's length, as policy.Sniff
	// would), so that it is echoed in one piece like every other chunk.
	n, isReq, err := firstChunk(conn, chunk, orDefault(s.PolicyWait, 500*time.Millisecond))
	if isReq {
		doc := s.Policy
		if doc == nil {
			doc = policy.Default()
		}
		if err := s.write(conn, policy.Response(doc)); err != nil {
			return "write_error", err
		}
		return "policy", nil
	}
	if err := s.write(conn, []byte(Greeting)); err != nil {
		return "write_error", err
	}
	for {
		if n > 0 {
			if werr := s.write(conn, buf[:len(Prefix)+n]); werr != nil {
				return "write_error", werr
			}
		}
		if err != nil {
			break
		}
		if s.IdleTimeout > 0 {
			if err := conn.SetReadDeadline(time.Now().Add(s.IdleTimeout)); err != nil {
				return "read_error", err
			}
		}
		n, err = conn.Read(chunk[:size])
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return "client_closed", nil
	}
	if s.IdleTimeout > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		return "idle_timeout", nil
	}
	return "read_error", err
}

// firstChunk reads into buf for at most wait: one read, or more while what
// came is a strict prefix of the policy request. Silence is not an error: it
// returns n == 0 and a nil error.
func firstChunk(conn net.Conn, buf []byte, wait time.Duration) (n int, isReq bool, err error) {
	if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return 0, false, err
	}
	for {
		m, rerr := conn.Read(buf[n:])
		n += m
		if rerr != nil {
			if !errors.Is(rerr, os.ErrDeadlineExceeded) {
				err = rerr
			}
			break
		}
		if n >= len(policy.Request) || string(buf[:n]) != policy.Request[:n] {
			break
		}
	}
	if derr := conn.SetReadDeadline(time.Time{}); derr != nil && err == nil {
		err = derr
	}
	return n, string(buf[:n]) == policy.Request, err
}

func (s *Server) write(conn net.Conn, b []byte) error {
	conn.SetWriteDeadline(time.Now().Add(orDefault(s.WriteTimeout, 10*time.Second)))
	_, err := conn.Write(b)
	return err
}
