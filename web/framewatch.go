package web

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
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
}

func (w *frameWatch) Read(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.Conn.Read(p)
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
			continue
		}
		if w.nhdr == 0 {
			start = i
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
		w.skip = length
		w.nhdr = 0
		start = -1
	}
	return 0, false
}

// websocketClose is the close frame's opcode (RFC 6455 section 5.2).
const websocketClose = 0x8

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
