package hub

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/passerelle/passerelle/protocol/policy"
	"github.com/passerelle/passerelle/protocol/xmlsocket"
)

// coalesceSize is the size of the buffers a writer fills with queued frames
// before one Write: a full TLS record (RFC 8446, section 5.1: 2^14 bytes).
const coalesceSize = 16 << 10

// directFrame is the size from which a queued frame is written from its own
// slice instead of being copied into a chunk.
const directFrame = 2 << 10

// maxIOV bounds the buffers handed to one writev.
const maxIOV = 32

// shrinkQueue is the queue capacity (in frames) above which a drained queue
// is released rather than kept for reuse, so a burst does not pin memory on
// a client that then goes idle.
const shrinkQueue = 256

// errSkipped reports a batch not written because the client was closing.
var errSkipped = errors.New("hub: client closing, batch not written")

// controlPrefix starts every control message (see control.go).
const controlPrefix = "<passerelle:"

// aLongTimeAgo is a deadline in the past: setting it makes blocked reads and
// writes return at once.
func aLongTimeAgo() time.Time { return time.Unix(1, 0) }

// client is one connection. The reader side (run) belongs to ServeConn's
// goroutine; the writer side (writeLoop) to its own goroutine; the queue
// between them, filled by every sender of the room, is guarded by mu.
type client struct {
	h    *Hub
	conn net.Conn
	addr string

	// Guarded by h.mu (and read without it by the reader goroutine, the
	// only one that changes them).
	room    *room
	idx     int
	nick    string // as the client wrote it
	nickKey string // its PRECIS comparison key, the key of h.nicks

	mu      sync.Mutex
	queue   [][]byte // frames waiting for the writer
	spare   [][]byte // the previous batch, reused as the next queue
	pending int      // bytes queued or being written
	closing bool
	reason  CloseReason
	started bool // the writer goroutine was started
	// writeFailed is set when a write was cut or failed: a TLS record may
	// be half sent, so the connection must not be closed gracefully (a
	// close_notify alert after half a record reads as garbage).
	writeFailed bool

	wake       chan struct{} // one token: "the queue or closing changed"
	writerDone chan struct{}

	// wakes lists the receivers whose writers this client's frames need
	// woken (see room.broadcast); reader goroutine only.
	wakes []*client

	// Flood control (token bucket), reader goroutine only.
	tokens float64
	last   time.Time
}

func newClient(h *Hub, conn net.Conn) *client {
	return &client{
		h:          h,
		conn:       conn,
		addr:       conn.RemoteAddr().String(),
		wake:       make(chan struct{}, 1),
		writerDone: make(chan struct{}),
		tokens:     float64(h.cfg.FloodBurst),
	}
}

// close closes the connection once reader and writer have returned. After a
// failed write, or when the peer is not reading, the transport under any TLS
// layer is closed directly: a close_notify alert written after half a record
// would reach the peer as a corrupt record, and one written to a peer that
// does not read would block.
func (c *client) close(reason CloseReason) error {
	c.mu.Lock()
	hard := c.writeFailed || reason == ReasonSlowConsumer || reason == ReasonWriteTimeout || reason == ReasonWriteError
	c.mu.Unlock()
	if !hard {
		return c.conn.Close()
	}
	raw := c.conn
	for {
		u, ok := raw.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		raw = u.NetConn()
	}
	return raw.Close()
}

// handshaker is implemented by *tls.Conn.
type handshaker interface {
	HandshakeContext(context.Context) error
}

// run is the reader side. It returns why the client should be closed and
// the error behind it, if any.
func (c *client) run(ctx context.Context) (CloseReason, error) {
	cfg := &c.h.cfg
	if hs, ok := c.conn.(handshaker); ok {
		hctx, cancel := context.WithTimeout(ctx, cfg.HandshakeTimeout)
		err := hs.HandshakeContext(hctx)
		cancel()
		if err != nil {
			if r, closing := c.closeReason(); closing {
				return r, nil
			}
			return ReasonHandshake, err
		}
	}

	// Hold the writer back until the first bytes rule out a policy
	// request: the requester expects the policy, a NUL and the close, and
	// nothing before them (Adobe, "Setting up a socket policy file
	// server").
	prefix, isReq, _ := policy.Sniff(c.conn, cfg.PolicyWait)
	if r, closing := c.closeReason(); closing {
		return r, nil
	}
	if isReq {
		return c.answerPolicy()
	}
	c.startWriter()

	var src io.Reader = c.conn
	if len(prefix) > 0 {
		src = io.MultiReader(bytes.NewReader(prefix), c.conn)
	}
	rd := xmlsocket.NewReaderSize(src, cfg.MaxMessage, cfg.ReadBufferSize)
	defer c.flushWakes()
	first := true
	for {
		frame, err := rd.ReadFrame()
		if err != nil {
			return c.readFailure(err)
		}
		if first && policy.IsRequest(frame) {
			// The request came in pieces slower than PolicyWait: the
			// writer is running; answerPolicy stops it first.
			return c.answerPolicy()
		}
		first = false
		if !c.allow() {
			return ReasonFlood, nil
		}
		if len(frame) > len(controlPrefix) && string(frame[:len(controlPrefix)]) == controlPrefix {
			c.h.control(c, frame)
		} else {
			c.room.broadcast(c, frame)
		}
		if !rd.Ready() {
			c.flushWakes() // about to wait for the network
		}
	}
}

// flushWakes wakes the writers collected by broadcast.
func (c *client) flushWakes() {
	for i, m := range c.wakes {
		m.signal()
		c.wakes[i] = nil
	}
	c.wakes = c.wakes[:0]
	if cap(c.wakes) > 1024 {
		c.wakes = nil
	}
}

// readFailure maps a read error to a close reason.
func (c *client) readFailure(err error) (CloseReason, error) {
	if r, closing := c.closeReason(); closing {
		return r, nil
	}
	var tooLarge *xmlsocket.FrameTooLargeError
	switch {
	case errors.As(err, &tooLarge):
		return ReasonTooLarge, err
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed):
		return ReasonClientClosed, nil
	default:
		return ReasonReadError, err
	}
}

// allow applies the flood limit to one incoming frame.
func (c *client) allow() bool {
	cfg := &c.h.cfg
	if cfg.FloodRate < 0 {
		return true
	}
	now := time.Now()
	if !c.last.IsZero() {
		c.tokens = min(c.tokens+now.Sub(c.last).Seconds()*cfg.FloodRate, float64(cfg.FloodBurst))
	}
	c.last = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

// answerPolicy drops the queue, stops the writer if it had started, and
// writes the policy and a NUL.
func (c *client) answerPolicy() (CloseReason, error) {
	c.kill(ReasonPolicy)
	c.waitWriter()
	c.conn.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteTimeout))
	if _, err := c.conn.Write(c.h.policyResp); err != nil {
		c.mu.Lock()
		c.writeFailed = true
		c.mu.Unlock()
		return ReasonPolicy, err
	}
	return ReasonPolicy, nil
}

// enqueue queues a frame for this client and wakes its writer.
func (c *client) enqueue(frame []byte) {
	if c.push(frame) {
		c.signal()
	}
}

// push queues a frame for this client without ever blocking the caller, and
// reports whether the writer needs a wake-up (the queue was empty). The
// frame is shared with the other receivers and must not be modified.
func (c *client) push(frame []byte) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	if c.pending+len(frame) > c.h.cfg.QueueBytes {
		c.mu.Unlock()
		c.kill(ReasonSlowConsumer)
		return false
	}
	start := false
	if !c.started && c.pending+len(frame) > c.h.cfg.QueueBytes/2 {
		// Still in its policy wait, yet silent while half a queue's worth
		// of messages came in: a seed client that only listens (a Flash
		// client asks for the policy as soon as it connects). Start
		// draining now, with half the budget left for the burst, rather
		// than let it overflow.
		c.started = true
		start = true
	}
	c.queue = append(c.queue, frame)
	c.pending += len(frame)
	first := len(c.queue) == 1
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
	return first
}

func (c *client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *client) closeReason() (CloseReason, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason, c.closing
}

// kill marks the client closing for reason (unless it already was; the
// first reason wins and is returned), drops its queue, and unblocks its
// reader and writer. The connection itself is closed by ServeConn once both
// sides have returned, so a sender never waits on a receiver's socket.
func (c *client) kill(reason CloseReason) CloseReason {
	c.mu.Lock()
	if c.closing {
		r := c.reason
		c.mu.Unlock()
		return r
	}
	c.closing = true
	c.reason = reason
	clear(c.queue)
	c.queue, c.spare, c.pending = nil, nil, 0
	c.mu.Unlock()
	c.signal()
	c.conn.SetReadDeadline(aLongTimeAgo())
	if reason != ReasonPolicy {
		// A policy answer is written after the writer stopped; for every
		// other reason a write in progress is cut short.
		c.conn.SetWriteDeadline(aLongTimeAgo())
	}
	return reason
}

// startWriter starts the writer goroutine, once.
func (c *client) startWriter() {
	c.mu.Lock()
	if c.started || c.closing {
		c.mu.Unlock()
		return
	}
	c.started = true
	c.mu.Unlock()
	go c.writeLoop()
}

// waitWriter waits for the writer goroutine, if it was started.
func (c *client) waitWriter() {
	// Callers have marked the client closing, so no writer starts after
	// this check.
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if started {
		<-c.writerDone
	}
}

// writeLoop drains the queue: it takes every queued frame at once and
// writes them with as few calls as possible, under a write deadline.
func (c *client) writeLoop() {
	defer close(c.writerDone)
	for {
		c.mu.Lock()
		for len(c.queue) == 0 && !c.closing {
			if cap(c.spare) > shrinkQueue {
				c.spare = nil
			}
			c.mu.Unlock()
			<-c.wake
			c.mu.Lock()
		}
		if c.closing {
			c.mu.Unlock()
			return
		}
		batch := c.queue
		c.queue = c.spare[:0]
		c.spare = nil
		c.mu.Unlock()

		n, err := c.writeBatch(batch)
		frames := len(batch)
		clear(batch) // let the shared frames go

		c.mu.Lock()
		c.pending -= n
		c.writeFailed = err != nil && err != errSkipped
		if !c.closing {
			c.spare = batch[:0]
		}
		c.mu.Unlock()
		if err != nil {
			reason := ReasonWriteError
			if errors.Is(err, os.ErrDeadlineExceeded) {
				reason = ReasonWriteTimeout
			}
			c.kill(reason)
			return
		}
		c.h.delivered.Add(uint64(frames))
	}
}

// writeBatch writes the frames in order and returns the bytes they held.
// Short frames are copied into a pooled 16 KiB chunk, long ones are sent from
// where they are, and the resulting list goes out with net.Buffers: one
// writev per round on plain TCP, and on TLS one Write (so one full record,
// not one record per frame) per chunk.
func (c *client) writeBatch(batch [][]byte) (int, error) {
	total := 0
	for _, f := range batch {
		total += len(f)
	}
	if err := c.conn.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteTimeout)); err != nil {
		return total, err
	}
	// kill sets closing before it cuts writes with a past deadline; a kill
	// that came before the deadline above was set is seen here.
	if _, closing := c.closeReason(); closing {
		return total, errSkipped
	}
	bp := c.h.bufs.Get().(*[]byte)
	defer c.h.bufs.Put(bp)
	var iovArr [maxIOV][]byte
	iov := iovArr[:0]
	chunk := (*bp)[:0]
	flush := func() error {
		if len(chunk) > 0 {
			iov = append(iov, chunk)
		}
		bufs := net.Buffers(iov)
		_, err := bufs.WriteTo(c.conn)
		iov = iovArr[:0]
		chunk = (*bp)[:0]
		return err
	}
	for _, f := range batch {
		if len(f) >= directFrame {
			if len(chunk) > 0 {
				iov = append(iov, chunk)
				chunk = chunk[len(chunk):len(chunk)] // the rest of the pooled buffer
			}
			iov = append(iov, f)
		} else {
			if len(chunk)+len(f) > cap(chunk) {
				if err := flush(); err != nil {
					return total, err
				}
			}
			chunk = append(chunk, f...)
		}
		if len(iov) >= maxIOV-1 {
			if err := flush(); err != nil {
				return total, err
			}
		}
	}
	if len(iov) > 0 || len(chunk) > 0 {
		if err := flush(); err != nil {
			return total, err
		}
	}
	return total, nil
}
