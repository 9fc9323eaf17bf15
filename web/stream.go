package web

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/passerelle/passerelle/internal/ratelog"
)

// Stream is the HTTP side of an asset listener: a WebSocket upgrade, on any
// path, speaks the listener's raw protocol (ENVOIE) as a byte stream over
// binary frames; any other request goes to Files (Assets: GET and HEAD
// /NAME).
type Stream struct {
	// Serve runs the raw protocol on a connection (envoie.Server.ServeConn).
	Serve   func(ctx context.Context, c net.Conn)
	Files   http.Handler
	Origins *Origins
	Logger  *slog.Logger
	// PingInterval is as Chat's.
	PingInterval time.Duration

	// bufs holds the buffers every WebSocket client of the listener
	// writes its frames from, held only during a Write, so an idle
	// client keeps none (as Chat's).
	bufs sync.Pool

	peerLog ratelog.Lazy // the per-client lines, rate-limited
}

func (s *Stream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws := acceptWebSocket(w, r, s.Origins, s.Files)
	if ws == nil {
		return
	}
	c := &streamConn{s: newSocket(ws, s.peerLog.Get(s.Logger), s.PingInterval), bufs: &s.bufs}
	takeOver(r, func(ctx context.Context) {
		defer c.Close()
		s.Serve(ctx, c)
	})
}

// maxStreamFrame bounds one frame of a stream's output: the response of a
// large file goes out in frames of this size (a client must accept any
// cut, SPEC "Assets").
const maxStreamFrame = 64 << 10

// streamConn is a WebSocket as a net.Conn: Read joins the client's frames,
// Write sends binary frames.
type streamConn struct {
	s    *socket
	bufs *sync.Pool // Stream.bufs
}

func (c *streamConn) Read(p []byte) (int, error) { return c.s.Read(p) }

// Write sends p in frames of at most maxStreamFrame, from a buffer of the
// listener's pool (never larger than one frame and its header, so every
// one goes back).
func (c *streamConn) Write(p []byte) (int, error) {
	bp, _ := c.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer c.bufs.Put(bp)
	written := 0
	for len(p) > 0 {
		n := min(len(p), maxStreamFrame)
		var err error
		var sent int
		*bp, sent, err = c.s.writeFrames(*bp, [][]byte{p[:n]})
		written += sent
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

func (c *streamConn) Close() error         { return c.s.closeFor(closeNormal, "") }
func (c *streamConn) Abort() error         { return c.s.abort() }
func (c *streamConn) LocalAddr() net.Addr  { return c.s.conn.LocalAddr() }
func (c *streamConn) RemoteAddr() net.Addr { return c.s.conn.RemoteAddr() }
func (c *streamConn) SetDeadline(t time.Time) error {
	c.s.setWriteDeadline(t)
	return c.s.conn.SetReadDeadline(t)
}
func (c *streamConn) SetReadDeadline(t time.Time) error  { return c.s.conn.SetReadDeadline(t) }
func (c *streamConn) SetWriteDeadline(t time.Time) error { return c.s.setWriteDeadline(t) }
