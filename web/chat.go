package web

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/internal/ratelog"
	"github.com/passerelle/passerelle/protocol/xmlsocket"
)

// Chat is the HTTP side of a chat listener: a WebSocket upgrade, on any
// path, joins the relay as a client like any other; any other GET / gets
// the chat page.
type Chat struct {
	Hub     *hub.Hub
	Page    *ChatPage
	Origins *Origins
	// MaxMessage is the relay's largest message (hub.Config.MaxMessage).
	MaxMessage int
	// Logger receives the listener's lines; nil discards.
	Logger *slog.Logger
	// PingInterval is how often an idle client is pinged; one silent for
	// two intervals is closed. Default DefaultPingInterval.
	PingInterval time.Duration

	// bufs holds the buffers every WebSocket client of the listener
	// writes its frames from, held only during a write, so idle clients
	// keep none.
	bufs sync.Pool

	peerLogOnce sync.Once
	peerLog     *ratelog.Logger // the per-client lines, rate-limited
	hubLog      *slog.Logger    // Logger with transport=websocket, for the hub
}

func (c *Chat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws := acceptWebSocket(w, r, c.Origins, c.Page)
	if ws == nil {
		return
	}
	c.peerLogOnce.Do(func() {
		log := orDiscard(c.Logger)
		c.peerLog = ratelog.New(log, 0)
		// One logger for every client, so that the hub's rate of close
		// lines is the listener's, not each client's.
		c.hubLog = log.With("transport", "websocket")
	})
	t := newChatTransport(newSocket(ws, c.peerLog, c.PingInterval), c.MaxMessage, connOf(r), &c.bufs)
	takeOver(r, func(ctx context.Context) {
		c.Hub.Serve(hub.WithLogger(ctx, c.hubLog), t)
	})
}

// chatTransport is a WebSocket client of the relay (hub.Transport): the
// frames it receives are one byte stream cut at NUL bytes, as a raw
// client's bytes are; each message it is sent goes out as one binary frame
// holding the message and its NUL.
type chatTransport struct {
	s    *socket
	rd   *xmlsocket.Reader
	conn net.Conn   // the listener's connection, for its peer status
	bufs *sync.Pool // Chat.bufs
}

var (
	_ hub.Transport          = (*chatTransport)(nil)
	_ hub.Parkable           = (*chatTransport)(nil)
	_ hub.Framer             = (*chatTransport)(nil)
	_ hub.ReasonCloser       = (*chatTransport)(nil)
	_ hub.PeerStatusReporter = (*chatTransport)(nil)
)

func newChatTransport(s *socket, maxMessage int, conn net.Conn, bufs *sync.Pool) *chatTransport {
	return &chatTransport{s: s, rd: xmlsocket.NewReaderSize(s, maxMessage, xmlsocket.DefaultBufferSize), conn: conn, bufs: bufs}
}

func (t *chatTransport) ReadMessage() ([]byte, error) { return t.rd.ReadFrame() }
func (t *chatTransport) Buffered() bool               { return t.rd.Ready() }

func (t *chatTransport) WriteMessages(msgs [][]byte) (int, error) {
	bp, _ := t.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	var n int
	var err error
	*bp, n, err = t.s.writeFrames(*bp, msgs)
	if cap(*bp) <= 2*frameBufferSize {
		// A buffer grown for one long message is not kept.
		t.bufs.Put(bp)
	}
	return n, err
}

// FramedLen is the bytes a message of n bytes takes as the binary frame
// writeFrames sends (hub.Framer).
func (t *chatTransport) FramedLen(n int) int { return frameHeaderSize(n) + n }

func (t *chatTransport) SetReadDeadline(d time.Time) error  { return t.s.setReadDeadline(d) }
func (t *chatTransport) SetWriteDeadline(d time.Time) error { return t.s.setWriteDeadline(d) }
func (t *chatTransport) Close() error                       { return t.s.closeWith(closeNormal, "") }
func (t *chatTransport) Abort() error                       { return t.s.abort() }
func (t *chatTransport) RemoteAddr() net.Addr               { return t.s.conn.RemoteAddr() }

// ParkConn is the listener's connection, when the socket can wait for a
// message below the library (hub.Parkable).
func (t *chatTransport) ParkConn() net.Conn {
	if t.s.fw == nil {
		return nil
	}
	return t.conn
}

func (t *chatTransport) PeerStatusWord() string {
	if t.conn == nil {
		return ""
	}
	return peerStatus(t.conn)
}

// CloseReason closes with the WebSocket close code that says why.
func (t *chatTransport) CloseReason(reason hub.CloseReason) error {
	if code, text, ok := readErrClose(t.s.readErr); ok {
		return t.s.closeWith(code, text)
	}
	switch {
	case reason == hub.ReasonTooLarge:
		return t.s.closeWith(closeTooBig, "message too big")
	case reason == hub.ReasonFlood:
		return t.s.closeWith(closePolicy, "flood")
	case reason == hub.ReasonShutdown:
		return t.s.closeWith(closeGoingAway, "server shutting down")
	}
	return t.s.closeWith(closeNormal, "")
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
