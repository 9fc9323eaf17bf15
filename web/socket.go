package web

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/passerelle/passerelle/internal/ratelog"
)

// WebSocket close codes (RFC 6455 section 7.4.1) passerelle sends.
const (
	closeNormal      = websocket.CloseNormalClosure           // 1000
	closeGoingAway   = websocket.CloseGoingAway               // 1001: the server shuts down
	closeProtocol    = websocket.CloseProtocolError           // 1002: a close frame with a 1-byte payload
	closeBadUTF8     = websocket.CloseInvalidFramePayloadData // 1007: a text frame that is not UTF-8
	closePolicy      = websocket.ClosePolicyViolation         // 1008: the flood limit, or too many pings and pongs
	closeTooBig      = websocket.CloseMessageTooBig           // 1009: a message over the maximum
	closeServerError = websocket.CloseInternalServerErr       // 1011
)

// Defaults of a socket's keep-alive.
const (
	// DefaultPingInterval is how often an idle WebSocket client is pinged;
	// one silent for two intervals is closed.
	DefaultPingInterval = 30 * time.Second
	// closeWait bounds the write of a close frame.
	closeWait = time.Second
	// controlRate and controlBurst bound the pings and pongs a client may
	// send: a browser answers one ping per interval and sends few of its
	// own. A client over them is closed with 1008 (errControlFlood).
	controlRate  = 10
	controlBurst = 20
)

// errBadUTF8 is the read error of a text frame whose payload is not UTF-8.
var errBadUTF8 = errors.New("websocket: text frame is not valid UTF-8")

// errControlFlood is the read error of a client that sends pings or pongs
// faster than controlRate: each ping costs the server a pong, a write of
// its own, so they are bounded like messages.
var errControlFlood = errors.New("websocket: pings and pongs over the limit")

// acceptWebSocket upgrades r when it asks for a WebSocket from an allowed
// Origin, and returns the connection. Otherwise it has answered r and
// returns nil: any other request goes to other, a refused Origin gets 403,
// a broken upgrade the library's error.
func acceptWebSocket(w http.ResponseWriter, r *http.Request, origins *Origins, other http.Handler) *websocket.Conn {
	if !websocket.IsWebSocketUpgrade(r) {
		other.ServeHTTP(w, r)
		return nil
	}
	if !origins.check(w, r) {
		return nil
	}
	ws, err := upgrader().Upgrade(watchHijack{w}, r, nil)
	if err != nil {
		return nil // the upgrader answered the client
	}
	// The request's read deadline (ApplyLimits) stays on a hijacked
	// connection: the WebSocket has its own keep-alive instead.
	ws.UnderlyingConn().SetReadDeadline(time.Time{})
	return ws
}

// readBufferSize is the library's read buffer, kept for the connection's
// life: the least it takes (a control frame's payload). Payloads longer
// than it are read past it, into the caller's buffer.
const readBufferSize = 125

// upgrader makes WebSocket connections: no compression (it would cost
// memory per client), no Origin check of its own (Origins does it), a small
// read buffer kept for the life of the connection, and no write buffer
// (frames are written by socket.writeFrames, never by the library).
func upgrader() *websocket.Upgrader {
	return &websocket.Upgrader{
		ReadBufferSize:    readBufferSize,
		WriteBufferPool:   noPool{},
		CheckOrigin:       func(*http.Request) bool { return true },
		EnableCompression: false,
		HandshakeTimeout:  readHeaderTimeout,
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			http.Error(w, reason.Error(), status)
		},
	}
}

// noPool is a write buffer pool that is never asked for a buffer: the
// library writes only control frames, from buffers of their own.
type noPool struct{}

func (noPool) Get() any       { return nil }
func (noPool) Put(any)        {}
func (noPool) String() string { return "none" }

// socket is one WebSocket connection as a byte stream: Read joins the
// payloads of the frames the client sends, text or binary (a text frame's
// payload must be UTF-8, checked across reads); writeFrames sends whole
// binary frames. The library (gorilla/websocket) reads frames and answers
// pings and close frames; every frame the server sends goes out in a single
// Write of whole frames, so the library's control frames, each a single
// Write too, can only fall between frames.
type socket struct {
	ws   *websocket.Conn
	conn net.Conn        // what frames are written to: the connection the client upgraded
	log  *ratelog.Logger // the listener's lines a client can cause

	// Reader side (one goroutine).
	cur     io.Reader
	text    bool
	partial [utf8.UTFMax]byte // an incomplete UTF-8 sequence at the end of a read
	npart   int
	readErr error

	lastRead  atomic.Int64 // unix nanoseconds of the last frame from the client
	lastWrite atomic.Int64 // unix nanoseconds of the end of the last data write
	// wdeadline is the write deadline the service set (unix nanoseconds,
	// 0 for none): a control frame written between its writes, under a
	// deadline of its own, puts it back.
	wdeadline atomic.Int64
	ping      *time.Timer
	// pingSent is when the last ping began to be written, pingWritten when
	// its write ended: a frame from the client after the first answers it,
	// the time to answer runs from the second. keepAlive only.
	pingSent    time.Time
	pingWritten time.Time
	interval    time.Duration
	control     *rate.Limiter // the client's pings and pongs; reader only
	// outq reads the socket's send queue (nil when it cannot be told);
	// queued is what it said at the previous keepAlive.
	outq   func() (int, bool)
	queued int
	closed atomic.Bool
	wmu    sync.Mutex // one writer of frames at a time

	// Parking (hub.Parkable). fw is the frame watch the library reads
	// from, nil when there is none; msgs counts the messages read to
	// their end. idleUntil is the read deadline the service set in the
	// future (unix nanoseconds, 0 for none): it applies only at a message
	// boundary, in waitMessage, never to a read inside the library, which a
	// timeout would break. interrupted is set once the service set one
	// that has passed (it is closing the client). reader says where the
	// reader is (readerIn, readerOut while it is away after such a wait,
	// parked perhaps, readerAbort once the keep-alive has asked it to
	// abort meanwhile). tcp is the socket under the connection, nil when
	// there is none.
	fw          *frameWatch
	msgs        uint64
	idleUntil   atomic.Int64
	interrupted atomic.Bool
	reader      atomic.Int32
	tcp         *net.TCPConn
}

// socket.reader's states.
const (
	readerIn    = iota // reading, or about to
	readerOut          // away after an idle wait: the hub may have parked it
	readerAbort        // away, and the keep-alive gave up on the client
)

func newSocket(ws *websocket.Conn, log *ratelog.Logger, ping time.Duration) *socket {
	if ping <= 0 {
		ping = DefaultPingInterval
	}
	s := &socket{ws: ws, conn: ws.UnderlyingConn(), log: log, interval: ping,
		control: rate.NewLimiter(controlRate, controlBurst)}
	if s.tcp = tcpConnOf(s.conn); s.tcp != nil {
		s.outq = sendQueue(s.tcp)
	}
	if w, ok := s.conn.(*watchedConn); ok {
		s.fw = &w.frameWatch
	}
	s.lastRead.Store(time.Now().UnixNano())
	ws.SetPongHandler(func(data string) error { return s.onControl(websocket.PongMessage, []byte(data)) })
	ws.SetPingHandler(func(data string) error { return s.onControl(websocket.PingMessage, []byte(data)) })
	// A client's close frame ends the stream (io.EOF); the answering close
	// frame goes out when the service closes the socket (closeWith), not
	// from the reader, so that no frame follows it.
	ws.SetCloseHandler(func(int, string) error { return nil })
	s.ping = time.AfterFunc(ping, s.keepAlive)
	return s
}

// onControl takes a ping or a pong from the client, from the library or
// from waitMessage: either shows the client alive, both count against the
// control-frame limit, and a ping is answered.
func (s *socket) onControl(op byte, payload []byte) error {
	s.lastRead.Store(time.Now().UnixNano())
	if !s.control.Allow() {
		return errControlFlood
	}
	if op == websocket.PingMessage {
		// A pong that cannot be written is not the reader's failure: the
		// writes of the service see the broken connection.
		_ = s.writeControl(websocket.PongMessage, payload)
	}
	return nil
}

// keepAlive runs every interval. A client is alive while it sends frames
// or while the data written to it makes progress: a write completes, or
// the socket's send queue shrinks (a listen-only client draining a backlog
// reads, though the ping queued behind that backlog reaches it late). One
// quiet both ways for an interval is pinged, once no data write is in
// progress, and the interval it has to answer starts when the ping has been
// written, not when it was queued; one that then sends nothing and takes
// nothing for that interval is dropped (ping_timeout).
func (s *socket) keepAlive() {
	if s.closed.Load() {
		return
	}
	now := time.Now()
	if s.outq != nil {
		// Written long ago but taken only now: what sat in the socket's
		// send queue going out is the client reading.
		if q, ok := s.outq(); ok {
			if q < s.queued {
				s.lastWrite.Store(now.UnixNano())
			}
			s.queued = q
		}
	}
	last := time.Unix(0, max(s.lastRead.Load(), s.lastWrite.Load()))
	switch {
	case !s.pingSent.IsZero() && s.pingSent.After(last) && now.Sub(s.pingWritten) >= s.interval:
		s.pingTimeout(now, last)
		return
	case now.Sub(last) >= s.interval && !s.pingSent.After(last) && s.wmu.TryLock():
		// A data write in progress (TryLock fails) is waited for: it
		// ends in progress, or in the service's own write timeout.
		s.pingSent = now
		err := s.writeLocked(pingFrame, now.Add(s.interval))
		s.wmu.Unlock()
		if err != nil {
			// Not even the ping's bytes left within an interval.
			s.pingTimeout(time.Now(), last)
			return
		}
		s.pingWritten = time.Now()
	}
	s.ping.Reset(s.interval)
}

// pingFrame is an empty ping, as a server sends it (unmasked).
var pingFrame = appendFrameHeader(nil, websocket.PingMessage, 0)

func (s *socket) pingTimeout(now, last time.Time) {
	s.log.Info("ws_ping_timeout", "websocket client answers no ping; closing", "remote_addr", s.conn.RemoteAddr().String(),
		"quiet", now.Sub(last).Round(time.Millisecond), "reason", "ping_timeout")
	s.abortIdle()
}

// writeControl writes one control frame between the service's writes,
// under a deadline of its own (an interval: a client that takes not even
// that in an interval is dead).
func (s *socket) writeControl(opcode int, payload []byte) error {
	frame := append(appendFrameHeader(make([]byte, 0, maxFrameHeader+len(payload)), opcode, len(payload)), payload...)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.writeLocked(frame, time.Now().Add(s.interval))
}

// writeLocked writes b under deadline d, then puts back the service's
// deadline. s.wmu must be held.
func (s *socket) writeLocked(b []byte, d time.Time) error {
	s.conn.SetWriteDeadline(d)
	_, err := s.conn.Write(b)
	s.conn.SetWriteDeadline(s.serviceDeadline())
	return err
}

func (s *socket) serviceDeadline() time.Time {
	if d := s.wdeadline.Load(); d != 0 {
		return time.Unix(0, d)
	}
	return time.Time{}
}

// setWriteDeadline is the service's write deadline, kept for writeLocked.
func (s *socket) setWriteDeadline(d time.Time) error {
	var ns int64
	if !d.IsZero() {
		ns = d.UnixNano()
	}
	s.wdeadline.Store(ns)
	return s.conn.SetWriteDeadline(d)
}

// Read returns the next bytes the client sent, across frames. At a message
// boundary, with a read deadline set in the future, it waits there, below
// the library, and returns the deadline's error if nothing came.
func (s *socket) Read(p []byte) (int, error) {
	asked := s.reader.Swap(readerIn) == readerAbort
	if asked {
		abort(s.conn) // what keepAlive asked for while the reader was away
	}
	if s.readErr != nil {
		return 0, s.readErr
	}
	for {
		if s.cur == nil {
			if d := s.idleUntil.Load(); d != 0 && !asked && s.drained() {
				if err := s.waitMessage(time.Unix(0, d)); err != nil {
					if errors.Is(err, os.ErrDeadlineExceeded) {
						s.reader.Store(readerOut)
						return 0, err
					}
					s.readErr = readError(err)
					return 0, s.readErr
				}
			}
			kind, r, err := s.ws.NextReader()
			if err != nil {
				if s.npart > 0 {
					s.readErr = errBadUTF8
				} else {
					s.readErr = readError(err)
				}
				return 0, s.readErr
			}
			s.lastRead.Store(time.Now().UnixNano())
			s.cur, s.text = r, kind == websocket.TextMessage
		}
		n, err := s.cur.Read(p)
		if s.text && n > 0 {
			if !s.validUTF8(p[:n]) {
				s.readErr = errBadUTF8
				return 0, s.readErr
			}
		}
		if err == io.EOF {
			s.cur = nil
			s.msgs++
			if s.text && s.npart > 0 {
				s.readErr = errBadUTF8
				return 0, s.readErr
			}
			if n == 0 {
				continue
			}
			return n, nil
		}
		if err != nil {
			s.readErr = readError(err)
			return n, s.readErr
		}
		if n > 0 {
			return n, nil
		}
	}
}

// drained reports whether the library holds nothing the client sent that
// it has not handed on: every byte it was given ends the last message read.
func (s *socket) drained() bool {
	return s.fw != nil && s.fw.msgEnds == s.msgs && !s.fw.pastMsgEnd
}

// Pending reports whether the client's next message has begun to come:
// the library or the frame watch holds bytes past the last message read.
// The chat's xmlsocket.Reader keeps its buffer then, where a read that
// ends at a message boundary would otherwise let it go and take a new
// one for every message of a busy sender.
func (s *socket) Pending() bool {
	return s.fw != nil && (!s.drained() || s.fw.pend > s.fw.pstart)
}

// waitMessage waits, until d, for the client to begin its next message
// (frameWatch.waitMessage), the connection's read deadline set for that
// wait alone.
func (s *socket) waitMessage(d time.Time) error {
	s.setConnReadDeadline(d)
	err := s.fw.waitMessage(s.onControl)
	s.setConnReadDeadline(time.Time{})
	return err
}

// setConnReadDeadline sets the connection's read deadline, unless the
// service has set one that passed: that one stays, whichever came first.
func (s *socket) setConnReadDeadline(d time.Time) {
	s.conn.SetReadDeadline(d)
	if s.interrupted.Load() {
		s.conn.SetReadDeadline(aLongTimeAgo)
	}
}

// aLongTimeAgo is a read deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

// setReadDeadline is the service's read deadline: one in the past ends a
// read at once, wherever it is; one in the future applies at the next
// message boundary (waitMessage); zero clears the latter.
func (s *socket) setReadDeadline(d time.Time) error {
	switch {
	case d.IsZero():
		s.idleUntil.Store(0)
		return nil
	case d.After(time.Now()):
		s.idleUntil.Store(d.UnixNano())
		return nil
	}
	s.interrupted.Store(true)
	return s.conn.SetReadDeadline(d)
}

// validUTF8 checks p, continuing a sequence cut at the end of the previous
// read, and keeps a sequence cut at its end for the next.
func (s *socket) validUTF8(p []byte) bool {
	if s.npart > 0 {
		need := utf8.UTFMax - s.npart
		take := min(need, len(p))
		var joined [2 * utf8.UTFMax]byte
		j := copy(joined[:], s.partial[:s.npart])
		j += copy(joined[j:], p[:take])
		r, size := utf8.DecodeRune(joined[:j])
		if r == utf8.RuneError && size <= 1 {
			if !utf8.FullRune(joined[:j]) && take == len(p) {
				copy(s.partial[:], joined[:j])
				s.npart = j
				return true
			}
			return false
		}
		used := size - s.npart
		s.npart = 0
		p = p[used:]
	}
	// Keep an incomplete sequence at the end for the next read.
	tail := 0
	for i := len(p) - 1; i >= 0 && i >= len(p)-utf8.UTFMax; i-- {
		if utf8.RuneStart(p[i]) {
			if !utf8.FullRune(p[i:]) {
				tail = len(p) - i
			}
			break
		}
	}
	if !utf8.Valid(p[:len(p)-tail]) {
		return false
	}
	s.npart = copy(s.partial[:], p[len(p)-tail:])
	return true
}

// readError turns the library's errors into what a stream reader expects:
// io.EOF for a client that closed.
func readError(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return io.EOF
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return io.EOF
	}
	return err
}

// writeFrames sends each message as one binary frame, all in one Write.
func (s *socket) writeFrames(buf []byte, msgs [][]byte) ([]byte, int, error) {
	need := 0
	for _, m := range msgs {
		need += len(m) + maxFrameHeader
	}
	if cap(buf) < need {
		buf = make([]byte, 0, max(need, frameBufferSize))
	}
	buf = buf[:0]
	total := 0
	for _, m := range msgs {
		buf = appendFrameHeader(buf, websocket.BinaryMessage, len(m))
		buf = append(buf, m...)
		total += len(m)
	}
	s.wmu.Lock()
	_, err := s.conn.Write(buf)
	s.wmu.Unlock()
	if err != nil {
		return buf, 0, err
	}
	s.lastWrite.Store(time.Now().UnixNano())
	return buf, total, nil
}

// maxFrameHeader is the longest header of a server's frame (RFC 6455
// section 5.2: 2 bytes, and 8 of extended length).
const maxFrameHeader = 10

// frameBufferSize is the size of the buffers frames are written from: a
// hub batch (about 16 KiB of frames, hub.Framer), or more when one message
// alone is longer.
const frameBufferSize = 20 << 10

// appendFrameHeader appends the header of one final, unmasked frame (a
// server's frames are never masked, RFC 6455 section 5.1).
func appendFrameHeader(b []byte, opcode int, n int) []byte {
	b = append(b, 0x80|byte(opcode))
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}

// frameHeaderSize is the length of the header appendFrameHeader writes
// for a payload of n bytes.
func frameHeaderSize(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xFFFF:
		return 4
	}
	return 10
}

// closeFor closes with the code a read error calls for (readErrClose),
// else with code.
func (s *socket) closeFor(code int, text string) error {
	if c, t, ok := readErrClose(s.readErr); ok {
		return s.closeWith(c, t)
	}
	return s.closeWith(code, text)
}

// readErrClose is the close code and text of a client's fault found while
// reading (1007, 1002, 1008); ok is false for any other error.
func readErrClose(err error) (code int, text string, ok bool) {
	switch {
	case errors.Is(err, errBadUTF8):
		return closeBadUTF8, "text frame is not UTF-8", true
	case errors.Is(err, errBadClose):
		return closeProtocol, "close frame with a 1-byte payload", true
	case errors.Is(err, errControlFlood):
		return closePolicy, "too many pings and pongs", true
	}
	return 0, "", false
}

// closeWith sends a close frame with code, then closes the connection.
func (s *socket) closeWith(code int, text string) error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	s.ping.Stop()
	s.conn.SetWriteDeadline(time.Now().Add(closeWait))
	s.wmu.Lock()
	err := s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(closeWait))
	s.wmu.Unlock()
	if err == nil && s.readErr != nil && !errors.Is(s.readErr, io.EOF) {
		// The client may still be sending (pings, frames after a bad
		// one): closing with its bytes unread makes the kernel answer with
		// a reset, which can destroy the close frame in flight. Read off
		// what it sends for a moment first, as envoie's refusals do; a
		// client answers a close frame with its own and hangs up.
		raw := s.conn
		if w, ok := raw.(*watchedConn); ok {
			raw = w.Conn // past the frame watch, which reads no further
		}
		raw.SetReadDeadline(time.Now().Add(closeLinger))
		io.CopyN(io.Discard, raw, maxLinger)
	}
	return s.conn.Close()
}

// closeLinger and maxLinger bound what closeWith reads off a client that
// is still sending when it is closed for a fault.
const (
	closeLinger = 250 * time.Millisecond
	maxLinger   = 256 << 10
)

// abort drops the connection without a close frame or TLS alert.
func (s *socket) abort() error {
	s.closed.Store(true)
	s.ping.Stop()
	return abort(s.conn)
}

// abortIdle is abort for the keep-alive, which runs beside the reader.
// While the reader is away after an idle wait (its client perhaps parked
// on the hub's Poller, which a closed socket would never wake), it only
// ends the connection's reading, which wakes the Poller, and leaves the
// abort to the reader's next Read.
func (s *socket) abortIdle() error {
	s.closed.Store(true)
	s.ping.Stop()
	if s.tcp != nil && s.reader.CompareAndSwap(readerOut, readerAbort) && s.tcp.CloseRead() == nil {
		return nil
	}
	return abort(s.conn)
}
