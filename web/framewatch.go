package web

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"os"

	"github.com/gorilla/websocket"
)

// errBadClose is the read error of a close frame whose payload is a
// single byte: a close body starts with a 2-byte status code (RFC 6455
// section 5.5.1), so one byte is a protocol error, answered 1002. The
// library reads such a frame as a close without a code; frameWatch sees it
// first.
var errBadClose = errors.New("websocket: close frame with a 1-byte payload")

// frameWatch follows the frame headers of a client's raw WebSocket stream,
// beside the library that decodes them, and stops the stream before a
// close frame the library would accept but RFC 6455 does not. It only
// reads headers (at most 14 bytes kept) and skips payloads by count.
type frameWatch struct {
	net.Conn
	hdr  [14]byte
	nhdr int
	skip uint64 // payload bytes of the current frame still to pass
	err  error  // errBadClose, once the bytes before the frame are read

	// Where the stream handed to the library stands (socket.drained):
	// msgEnds counts the final frames of data messages handed whole, and
	// pastMsgEnd is set once anything follows the last of them.
	endsMsg    bool // the current frame is the final frame of a data message
	msgEnds    uint64
	pastMsgEnd bool

	// What waitMessage read and the library has not: pbuf[pstart:pend],
	// then perr, the read error that came after it. pbuf is made by the
	// first wait and let go when a wait ends with it empty, so that a
	// parked client holds none.
	pbuf         *[maxControlFrame]byte
	pstart, pend int
	perr         error
}

// maxControlFrame is the longest frame a client may send that is not
// data: a masked control frame with its 125-byte payload.
const maxControlFrame = 2 + 4 + 125

func (w *frameWatch) Read(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	var n int
	var err error
	switch {
	case w.pend > w.pstart:
		n = copy(p, w.pbuf[w.pstart:w.pend])
		w.pstart += n
	case w.perr != nil:
		err, w.perr = w.perr, nil
	default:
		n, err = w.Conn.Read(p)
	}
	if n > 0 {
		if cut, bad := w.scan(p[:n]); bad {
			// What came before the bad frame is the client's and is
			// read as usual; the frame itself is never handed on.
			w.err = errBadClose
			if cut > 0 {
				return cut, nil
			}
			return 0, w.err
		}
	}
	return n, err
}

// scan follows the frames in p. It reports a bad close frame, with the
// offset in p where its header began (0 when it began in an earlier read).
func (w *frameWatch) scan(p []byte) (cut int, bad bool) {
	start := -1 // where the header being collected began in p
	for i := 0; i < len(p); {
		if w.skip > 0 {
			k := min(uint64(len(p)-i), w.skip)
			w.skip -= k
			i += int(k)
			if w.skip == 0 {
				w.frameEnd()
			}
			continue
		}
		if w.nhdr == 0 {
			start = i
			w.pastMsgEnd = true
		}
		w.hdr[w.nhdr] = p[i]
		w.nhdr++
		i++
		need := frameHeaderLen(w.hdr[:w.nhdr])
		if need == 0 || w.nhdr < need {
			continue
		}
		length := framePayloadLen(w.hdr[:need])
		if w.hdr[0]&0x0f == websocketClose && length == 1 {
			return max(start, 0), true
		}
		w.endsMsg = w.hdr[0]&0x80 != 0 && w.hdr[0]&0x0f <= websocketBinary
		w.skip = length
		w.nhdr = 0
		start = -1
		if length == 0 {
			w.frameEnd()
		}
	}
	return 0, false
}

// frameEnd notes that a frame has been handed whole.
func (w *frameWatch) frameEnd() {
	if w.endsMsg {
		w.msgEnds++
		w.pastMsgEnd = false
		w.endsMsg = false
	}
}

// waitMessage reads from the connection, under the read deadline the
// caller set, until the client has begun a frame the library must read (a
// data or a close frame, or one it must refuse), and returns nil; the pings
// and pongs before it are taken out of the stream here and handed to
// control, whose error it returns. It returns the deadline's error when the
// deadline passed first: what it read is kept, here, for the next call and
// for Read, and the library has seen nothing, so it reads on unharmed. Call
// it only when the library holds nothing read (socket.drained).
func (w *frameWatch) waitMessage(control func(op byte, payload []byte) error) error {
	if w.pbuf == nil {
		w.pbuf = new([maxControlFrame]byte)
	}
	for {
		for {
			b := w.pbuf[w.pstart:w.pend]
			hl := frameHeaderLen(b)
			if hl == 0 || len(b) < hl {
				break // the header is not whole yet
			}
			op := b[0] & 0x0f
			if (op != websocket.PingMessage && op != websocket.PongMessage) || b[0]&0x80 == 0 || b[1]&0x80 == 0 {
				return nil // data, close, or a frame the library refuses
			}
			n := framePayloadLen(b[:hl])
			if n > 125 {
				return nil // the library refuses it
			}
			if len(b) < hl+int(n) {
				break
			}
			mask, payload := b[hl-4:hl], b[hl:hl+int(n)]
			for i := range payload {
				payload[i] ^= mask[i%4]
			}
			w.pstart += hl + int(n)
			if err := control(op, payload); err != nil {
				return err
			}
		}
		if w.perr != nil {
			return nil // the library reads the error, after what is left
		}
		w.pend = copy(w.pbuf[:], w.pbuf[w.pstart:w.pend])
		w.pstart = 0
		if w.pend == len(w.pbuf) {
			return nil // cannot be: a control frame fits
		}
		n, err := w.Conn.Read(w.pbuf[w.pend:])
		w.pend += n
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if n == 0 {
					if w.pend == 0 {
						w.pbuf = nil
					}
					return err
				}
				continue // answer what came, then find the deadline again
			}
			w.perr = err
		}
	}
}

// Opcodes (RFC 6455 section 5.2): the close frame's, and the last of the
// data frames' (continuation 0, text 1, binary 2).
const (
	websocketClose  = 0x8
	websocketBinary = 0x2
)

// frameHeaderLen is the length of a frame header starting with h, or 0
// while h is too short to tell.
func frameHeaderLen(h []byte) int {
	if len(h) < 2 {
		return 0
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4 // the masking key
	}
	return n
}

// framePayloadLen is the payload length of the complete header h.
func framePayloadLen(h []byte) uint64 {
	switch l := h[1] & 0x7f; l {
	case 126:
		return uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		return binary.BigEndian.Uint64(h[2:10])
	default:
		return uint64(l)
	}
}

// watchHijack hands the library, when it takes the connection over, a
// connection seen through a frameWatch.
type watchHijack struct {
	http.ResponseWriter
}

func (w watchHijack) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return &watchedConn{frameWatch{Conn: c}}, brw, nil
}

func (w watchHijack) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// watchedConn is the frameWatch the library reads from, keeping the Abort
// and PeerStatusWord of the connection under it.
type watchedConn struct{ frameWatch }

func (c *watchedConn) Abort() error           { return abort(c.Conn) }
func (c *watchedConn) PeerStatusWord() string { return peerStatus(c.Conn) }
func (c *watchedConn) NetConn() net.Conn      { return c.Conn }
