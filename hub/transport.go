package hub

import (
	"net"
	"sync"
	"time"

	"github.com/passerelle/passerelle/protocol/xmlsocket"
)

// Transport carries one client's messages, whole, in both directions. The
// hub reads from it in the client's own goroutine (Serve's) and writes to it
// from the client's writer goroutine; the deadlines, Close and Abort may be
// called from any goroutine.
//
// ServeConn wraps a byte stream (plain TCP, or TLS already through its
// handshake) in the hub's own Transport: the xmlsocket framing, and writes
// that coalesce queued messages. Another transport (a WebSocket, one message
// per binary frame) implements this interface and calls Serve, so the hub
// never parses a message twice.
type Transport interface {
	// ReadMessage returns the client's next message, its terminating NUL
	// included and no other NUL in it, at most Config.MaxMessage bytes (the
	// hub refuses longer ones with too_large). The slice becomes the hub's:
	// it is shared by every receiver and never modified. io.EOF, or an error
	// wrapping it, means the client left.
	ReadMessage() ([]byte, error)
	// Buffered reports whether the next ReadMessage returns without waiting
	// for the peer. The hub wakes receivers' writers before waiting, so a
	// burst of messages reaches each of them as one batch.
	Buffered() bool
	// WriteMessages writes msgs (each with its NUL) in order, with as few
	// writes as it can, and returns how many bytes of them went out. The
	// hub hands it at most about 16 KiB at a time, frames included for a
	// Framer (or one longer message), and counts those bytes against the
	// client's queue budget until it returns.
	WriteMessages(msgs [][]byte) (int, error)
	// SetReadDeadline and SetWriteDeadline are net.Conn's: a deadline in the
	// past makes a blocked ReadMessage or WriteMessages return at once.
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
	// Close ends the connection gracefully (a TLS close_notify, a WebSocket
	// close frame).
	Close() error
	// Abort ends the connection without writing anything more: the hub
	// calls it after a write was cut short, when a graceful close could
	// follow half a record, or block on a peer that does not read.
	Abort() error
	// RemoteAddr is the client's address, for the logs.
	RemoteAddr() net.Addr
}

// Parkable is implemented by a Transport other than a byte stream that can
// be parked while its client is quiet (Config.ParkAfter, park.go). ParkConn
// is the connection under it whose socket has bytes when the client sends,
// and which can be detached from its listener's handler (Detacher); nil
// when there is none. Once a read deadline set by SetReadDeadline passes,
// ReadMessage must return an error wrapping os.ErrDeadlineExceeded with
// nothing read from that socket held where the socket cannot tell, and
// read on as before when called again.
type Parkable interface {
	ParkConn() net.Conn
}

// Framer is implemented by a Transport that sends each message in a frame
// of its own (a WebSocket): FramedLen is how many bytes a message of n
// bytes takes on the wire, frame included. The hub then hands WriteMessages
// batches whose frames fit one TLS record, not only their messages.
type Framer interface {
	FramedLen(n int) int
}

// Aborter is implemented by connections that can be ended without a
// graceful close: secure.Conn closes its TCP socket under the TLS layer, so
// no close_notify alert follows half a record. ServeConn calls Abort where
// it must not close gracefully, and Close on connections without it.
type Aborter interface {
	Abort() error
}

// ReasonCloser is implemented by transports that can tell a client why it
// is closed (a WebSocket close code): the hub calls CloseReason instead of
// Close for a graceful close.
type ReasonCloser interface {
	CloseReason(reason CloseReason) error
}

// PeerStatusReporter is implemented by connections that know the verdict
// on the client's certificate (secure.Conn): one word such as "trusted" or
// "unknown"; "" means none. ServeConn and Serve log it as peer_status.
type PeerStatusReporter interface {
	PeerStatusWord() string
}

// coalesceSize is the size of the buffers a writer fills with queued
// messages before one Write: a full TLS record (RFC 8446, section 5.1: 2^14
// bytes). It is also the most the hub hands WriteMessages at once, framing
// included (see writeBatch and Framer).
const coalesceSize = 16 << 10

// directFrame is the size from which a queued message is written from its
// own slice instead of being copied into a chunk.
const directFrame = 2 << 10

// maxIOV bounds the buffers handed to one writev.
const maxIOV = 32

// streamTransport is the Transport of a byte stream: the XMLSocket framing
// on the way in, coalesced writes on the way out.
type streamTransport struct {
	net.Conn
	rd   *xmlsocket.Reader
	bufs *sync.Pool // of *[]byte, coalesceSize each (Hub.bufs)
}

var (
	_ Transport          = (*streamTransport)(nil)
	_ PeerStatusReporter = (*streamTransport)(nil)
)

func newStreamTransport(conn net.Conn, maxMessage, bufSize int, bufs *sync.Pool) *streamTransport {
	return &streamTransport{
		Conn: conn,
		rd:   xmlsocket.NewReaderSize(conn, maxMessage, bufSize),
		bufs: bufs,
	}
}

func (s *streamTransport) ReadMessage() ([]byte, error) { return s.rd.ReadFrame() }

func (s *streamTransport) Buffered() bool { return s.rd.Ready() }

// Abort closes the connection without a graceful close, when the
// connection knows how (Aborter); a plain TCP connection has nothing more
// to send on Close anyway.
func (s *streamTransport) Abort() error {
	if a, ok := s.Conn.(Aborter); ok {
		return a.Abort()
	}
	return s.Conn.Close()
}

// PeerStatusWord passes on the connection's verdict, "" when it has none.
func (s *streamTransport) PeerStatusWord() string {
	if p, ok := s.Conn.(PeerStatusReporter); ok {
		return p.PeerStatusWord()
	}
	return ""
}

// WriteMessages writes msgs in order and returns the bytes written. Short
// messages are copied into a pooled 16 KiB chunk, long ones are sent from
// where they are, and the resulting list goes out with net.Buffers: one
// writev per round on plain TCP, and on TLS one Write (so one full record,
// not one record per message) per chunk.
func (s *streamTransport) WriteMessages(msgs [][]byte) (int, error) {
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	var iovArr [maxIOV][]byte
	iov := iovArr[:0]
	chunk := (*bp)[:0]
	written := 0
	flush := func() error {
		if len(chunk) > 0 {
			iov = append(iov, chunk)
		}
		bufs := net.Buffers(iov)
		n, err := bufs.WriteTo(s.Conn)
		written += int(n)
		iov = iovArr[:0]
		chunk = (*bp)[:0]
		return err
	}
	for _, m := range msgs {
		if len(m) >= directFrame {
			if len(chunk) > 0 {
				iov = append(iov, chunk)
				chunk = chunk[len(chunk):] // the rest of the pooled buffer
			}
			iov = append(iov, m)
		} else {
			if len(chunk)+len(m) > cap(chunk) {
				if err := flush(); err != nil {
					return written, err
				}
			}
			chunk = append(chunk, m...)
		}
		if len(iov) >= maxIOV-1 {
			if err := flush(); err != nil {
				return written, err
			}
		}
	}
	if len(iov) > 0 || len(chunk) > 0 {
		if err := flush(); err != nil {
			return written, err
		}
	}
	return written, nil
}
