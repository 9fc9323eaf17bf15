package hub

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/passerelle/passerelle/internal/readiness"
	"github.com/passerelle/passerelle/protocol/xmlsocket"
)

// shrinkQueue is the queue capacity (in messages) above which a drained
// queue is kept for reuse only while it was at least a quarter full, so a
// burst does not pin memory on a client that then receives little; a writer
// that retires lets its queues go whatever their size.
const shrinkQueue = 256

// errSkipped reports a round not written because the client was closing.
var errSkipped = errors.New("hub: client closing, messages not written")

// controlPrefix starts every control message (see control.go).
const controlPrefix = "<passerelle:"

// bom is U+FEFF in UTF-8, the byte-order mark a UTF-8 decoder drops from
// the start of a text (WHATWG Encoding, "UTF-8 decode"; Python's
// "utf-8-sig").
const bom = "\xef\xbb\xbf"

// controlStart returns where the control prefix of msg starts, or -1 when
// msg is not a control message. A message whose text starts with the prefix
// once its leading byte-order marks are dropped is one: relayed, it would
// read as a reply of the server to a client whose decoder drops them.
func controlStart(msg []byte) int {
	i := 0
	for len(msg)-i >= len(bom) && msg[i] == bom[0] && string(msg[i:i+len(bom)]) == bom {
		i += len(bom)
	}
	if len(msg)-i > len(controlPrefix) && string(msg[i:i+len(controlPrefix)]) == controlPrefix {
		return i
	}
	return -1
}

// IsControl reports whether msg is a control message by the rule above:
// one a client sends is a command, never relayed, so one that arrives from
// elsewhere (another node) is a forgery of a server reply.
func IsControl(msg []byte) bool { return controlStart(msg) >= 0 }

// aLongTimeAgo is a deadline in the past: setting it makes blocked reads and
// writes return at once.
func aLongTimeAgo() time.Time { return time.Unix(1, 0) }

// client is one connection. The reader side (run) belongs to Serve's
// goroutine; the writer side (writeLoop) to a goroutine of its own that runs
// only while there is something to write (kick starts it, it returns once
// the queue has stayed empty for writerLinger), so an idle client costs one
// goroutine, not two; the queue between them, filled by every sender of the
// room, is guarded by mu.
type client struct {
	h    *Hub
	t    Transport
	addr string
	// peer is the verdict on the client's certificate, "" when the
	// transport does not report one.
	peer string

	// room, idx, nick and nickKey are guarded by h.mu. Only this client's
	// own goroutine (Serve: register, join, nick, unregister) changes room,
	// nick and nickKey, so it may read them without the lock (run reads
	// room to broadcast). idx is not like them: when another member leaves
	// the room, moveLocked, on that member's goroutine, moves this client
	// into the freed slot and changes its idx; idx is only used under h.mu.
	room    *room
	idx     int
	nick    string // as the client wrote it
	nickKey string // its PRECIS comparison key, the key of h.nicks

	mu      sync.Mutex
	queue   [][]byte // messages waiting for the writer
	spare   [][]byte // the previous batch, reused as the next queue
	pending int      // bytes queued, or handed to a write that has not returned
	closing bool
	reason  CloseReason
	// held keeps the writer from writing while the client's listener has
	// not told it apart from an HTTP or policy client (Hub.AdmitConn):
	// messages queue up meanwhile.
	held bool
	// writeFailed is set when a write was cut or failed: a TLS record may
	// be half sent, so the connection must not be closed gracefully (a
	// close_notify alert after half a record reads as garbage).
	writeFailed bool
	// writing is set while a writer goroutine runs (kick, writeLoop);
	// writers counts it, for Serve and Leave to wait on once the client
	// is closing (no writer starts after that). wake (one token, made
	// with the first writer) tells a writer waiting for more that the
	// queue or closing changed. linger is the running writer's timer
	// (nil when none); wrote is set by the writer at each batch and
	// cleared when the timer fires; retire is set when the timer finds
	// the writer idle, which then returns at its next empty queue (see
	// lingerTick).
	writing   atomic.Bool
	writers   sync.WaitGroup
	wake      chan struct{}
	linger    *time.Timer
	lingerGen uint64 // tells the running writer's timer from the timers of writers gone
	wrote     bool
	retire    bool
	// progress is when the writer last showed it is moving: it started or
	// finished a write, or was handed a queue that was empty. A sender that
	// finds the queue full waits for room until progress is
	// Config.SlowReceiverTimeout old, then drops the client (slow_consumer).
	progress time.Time
	// roomFreed, when not nil, is closed by the writer once its writes have
	// freed half the queue budget (and by kill): the senders waiting for
	// room wait on it.
	roomFreed chan struct{}

	// wakes lists the receivers whose writers this client's messages need
	// woken (see room.broadcast); full lists the receivers whose queue had
	// no room for the message being relayed, which the reader then waits
	// for. Reader goroutine only.
	wakes []*client
	full  []*client

	// parked is the client's wait in the hub's Poller while it is parked
	// (park.go); guarded by mu.
	parked *readiness.Wait

	// Flood control, reader goroutine only: flood is the token bucket
	// (nil: no limit); heldCredit is the allowance earned while the relay
	// was not reading this client because a receiver's queue was full
	// (see hold).
	flood      *rate.Limiter
	heldCredit float64
}

func newClient(h *Hub, t Transport, peer string) *client {
	return &client{
		h:     h,
		t:     t,
		addr:  t.RemoteAddr().String(),
		peer:  peer,
		flood: newFloodLimiter(&h.cfg),
	}
}

func newFloodLimiter(cfg *Config) *rate.Limiter {
	if cfg.FloodRate <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(cfg.FloodRate), cfg.FloodBurst)
}

// close ends the connection once reader and writer have returned. After a
// failed write, or when the peer is not reading, the transport is aborted:
// a TLS close_notify alert written after half a record would reach the peer
// as a corrupt record, and one written to a peer that does not read would
// block.
func (c *client) close(reason CloseReason) error {
	c.mu.Lock()
	hard := c.writeFailed || reason == ReasonSlowConsumer || reason == ReasonWriteTimeout || reason == ReasonWriteError
	c.mu.Unlock()
	if hard {
		return c.t.Abort()
	}
	if rc, ok := c.t.(ReasonCloser); ok {
		return rc.CloseReason(reason)
	}
	return c.t.Close()
}

// run is the reader side. It returns why the client should be closed and
// the error behind it, if any. With a linger, it returns errParked instead
// once the client has sent nothing for that long, its read deadline
// cleared (see park.go).
func (c *client) run(linger time.Duration) (CloseReason, error) {
	cfg := &c.h.cfg
	defer c.flushWakes()
	if linger > 0 {
		if r, closing := c.armRead(linger); closing {
			return r, nil
		}
	}
	read := false // a message came since the deadline was set
	for {
		msg, err := c.t.ReadMessage()
		if err != nil {
			if linger > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
				if r, closing := c.closeReason(); closing {
					return r, nil // kill's deadline
				}
				if read {
					read = false
					if r, closing := c.armRead(linger); closing {
						return r, nil
					}
					continue
				}
				c.t.SetReadDeadline(time.Time{})
				if r, closing := c.closeReason(); closing {
					return r, nil
				}
				return "", errParked
			}
			return c.readFailure(err)
		}
		read = true
		if len(msg) > cfg.MaxMessage {
			// The transport did not apply the limit: refuse as the
			// xmlsocket reader would.
			return ReasonTooLarge, &xmlsocket.FrameTooLargeError{Max: cfg.MaxMessage}
		}
		if len(msg) == 0 || msg[len(msg)-1] != 0 {
			return ReasonReadError, fmt.Errorf("hub: transport returned a message without its NUL (%d bytes)", len(msg))
		}
		if !c.allow() {
			return ReasonFlood, nil
		}
		if i := controlStart(msg); i >= 0 {
			c.h.control(c, msg[i:])
		} else {
			c.room.broadcast(c, msg)
			c.h.relay(c, msg)
			c.waitFull(msg)
		}
		if !c.t.Buffered() {
			c.flushWakes() // about to wait for the network
		}
	}
}

// armRead sets the read deadline linger from now, then reports whether the
// client is closing: kill sets its deadline after marking the client
// closing, so a deadline set here before kill's is replaced by it, and one
// set after is seen here.
func (c *client) armRead(linger time.Duration) (CloseReason, bool) {
	c.t.SetReadDeadline(time.Now().Add(linger))
	return c.closeReason()
}

// waitFull queues msg to the receivers broadcast found without room for
// it, waiting for each (pushWait), with the room's lock released: joins and
// leaves go on meanwhile. The writers already collected are woken first,
// so that the receivers waited for are draining.
func (c *client) waitFull(msg []byte) {
	if len(c.full) == 0 {
		return
	}
	c.flushWakes()
	start := time.Now()
	for i, m := range c.full {
		m.pushWait(msg)
		c.full[i] = nil
	}
	c.hold(time.Since(start))
	c.full = c.full[:0]
	if cap(c.full) > 1024 {
		c.full = nil
	}
}

// flushWakes wakes the writers collected by broadcast.
func (c *client) flushWakes() {
	for i, m := range c.wakes {
		m.kick()
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

// allow applies the flood limit to one incoming message: the bucket
// first, then what the client earned while it was held back.
func (c *client) allow() bool {
	if c.flood == nil || c.flood.Allow() {
		return true
	}
	if c.heldCredit >= 1 {
		c.heldCredit--
		return true
	}
	return false
}

// hold credits the client with the time d the relay stopped reading it to
// wait for a full receiver. Whatever it sent meanwhile piled up in its
// socket and is read at once afterwards: without the credit, a sender well
// under the rate would be closed as a flood the moment the receiver it
// waited for is dropped. The credit is what the rate allows in d, on top of
// the bucket (whose burst caps what it gathers while waiting), and at most
// what the rate allows in SlowReceiverTimeout plus a burst, so that over
// any stretch a client never gets more than the rate and a burst beyond
// the time it was not read.
func (c *client) hold(d time.Duration) {
	if c.flood == nil || d <= 0 {
		return
	}
	cfg := &c.h.cfg
	most := cfg.FloodRate*cfg.SlowReceiverTimeout.Seconds() + float64(cfg.FloodBurst)
	c.heldCredit = min(c.heldCredit+d.Seconds()*cfg.FloodRate, most)
}

// enqueue queues a message for this client and wakes its writer, waiting
// for room as a sender does (see pushWait): a control answer to a client
// that does not read its answers slows that client down, then drops it.
func (c *client) enqueue(msg []byte) {
	start := time.Now()
	c.pushWait(msg)
	c.hold(time.Since(start))
}

// push queues a message for this client without ever blocking the caller,
// and reports whether the writer needs a wake-up (the queue was empty). A
// message that would exceed the budget drops the client (slow_consumer):
// Publish uses it, so that a link from another node never waits on one
// receiver. The message is shared with the other receivers and must not be
// modified.
func (c *client) push(msg []byte) bool {
	first, full := c.tryPush(msg)
	if full {
		c.kill(ReasonSlowConsumer)
	}
	return first
}

// tryPush queues msg if it fits in the budget. It reports whether the
// writer needs a wake-up (the queue was empty) and whether the queue was
// too full to take it; a closing client takes nothing and is neither.
func (c *client) tryPush(msg []byte) (first, full bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false, false
	}
	if c.pending+len(msg) > c.h.cfg.QueueBytes {
		return false, true
	}
	if len(c.queue) == 0 && c.pending == 0 {
		// The writer is idle: it has made no progress to speak of, and
		// the time it takes to get going starts now.
		c.progress = time.Now()
	}
	c.queue = append(c.queue, msg)
	c.pending += len(msg)
	return len(c.queue) == 1, false
}

// pushWait queues msg, waiting while the queue has no room for it: the
// calling reader stops reading from its own client meanwhile, which is how
// a sender faster than its receivers is slowed down rather than
// disconnected. The wait ends when the writer frees room, when the client
// closes, or when the writer has shown no progress for
// Config.SlowReceiverTimeout, measured from the writer's own last progress,
// not from when this wait began; then the client is dropped
// (slow_consumer). Every sender waiting on a dead receiver so wakes at the
// same moment, at most that long after the receiver stopped taking bytes.
func (c *client) pushWait(msg []byte) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			return
		}
		if c.pending+len(msg) <= c.h.cfg.QueueBytes {
			c.mu.Unlock()
			if first, _ := c.tryPush(msg); first {
				c.kick()
			}
			return
		}
		if c.roomFreed == nil {
			c.roomFreed = make(chan struct{})
		}
		freed := c.roomFreed
		left := time.Until(c.progress.Add(c.h.cfg.SlowReceiverTimeout))
		c.mu.Unlock()
		if left <= 0 {
			c.kill(ReasonSlowConsumer)
			return
		}
		c.kick() // the writer may not have been started for this queue yet
		if timer == nil {
			timer = time.NewTimer(left)
		} else {
			timer.Reset(left)
		}
		select {
		case <-freed:
		case <-timer.C:
		}
	}
}

// freeRoomLocked wakes the senders waiting for room in the queue. c.mu
// must be held.
func (c *client) freeRoomLocked() {
	if c.roomFreed != nil {
		close(c.roomFreed)
		c.roomFreed = nil
	}
}

// writerLinger is how long a writer whose queue is empty waits for more
// before it returns (one to two periods, see writeLoop): a client of a busy
// room keeps its writer (and the stack its TLS writes grew) from one burst
// to the next, an idle one holds none.
const writerLinger = 100 * time.Millisecond

// kick starts the writer if the queue holds something it may write and no
// writer is running, and wakes it if one is waiting for more. A writer
// looks at the queue again under mu before it returns, so no message is
// left behind.
//
// writing is read without mu first: a sender kicks after its message is in
// the queue, and a writer clears writing under mu only after it found the
// queue empty there, so a writer seen running will see the message. c.wake
// is set before writing is first stored, and never changes after.
func (c *client) kick() {
	if c.writing.Load() {
		select {
		case c.wake <- struct{}{}:
		default:
		}
		return
	}
	c.mu.Lock()
	if c.writing.Load() {
		c.mu.Unlock()
		c.signal()
		return
	}
	start := !c.held && !c.closing && len(c.queue) > 0
	if start {
		if c.wake == nil {
			c.wake = make(chan struct{}, 1)
		}
		c.writing.Store(true)
		c.retire = false
		c.writers.Add(1)
	}
	c.mu.Unlock()
	if start {
		go c.writeLoop()
	}
}

// lingerTick is the linger timer of writer gen firing: a writer
// that wrote since the last tick, or has something to write, goes on for
// another period; one that did not is told to return (retire). An idle
// writer so returns between one and two periods after its last write. A
// tick of a writer that already returned does nothing.
func (c *client) lingerTick(gen uint64) {
	c.mu.Lock()
	if c.linger == nil || c.lingerGen != gen {
		c.mu.Unlock()
		return
	}
	if c.wrote || len(c.queue) > 0 {
		c.wrote = false
		c.linger.Reset(writerLinger)
		c.mu.Unlock()
		return
	}
	c.retire = true
	c.mu.Unlock()
	c.signal()
}

// signal wakes a writer waiting for more, if there is one. c.wake is only
// set under mu, before the first writer starts; a client that never had one
// has nothing to wake.
func (c *client) signal() {
	c.mu.Lock()
	w := c.wake
	c.mu.Unlock()
	if w == nil {
		return
	}
	select {
	case w <- struct{}{}:
	default:
	}
}

func (c *client) closeReason() (CloseReason, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason, c.closing
}

// release lets the writer write what was queued while the client was held.
func (c *client) release() {
	c.mu.Lock()
	c.held = false
	c.mu.Unlock()
	c.kick()
}

// withdraw ends a held client that turned out not to be a chat client: its
// queue is dropped and its writer returns without having written. Unlike
// kill it leaves the connection's deadlines alone, for whoever serves the
// connection next.
func (c *client) withdraw() {
	c.mu.Lock()
	c.closing = true
	if c.reason == "" {
		c.reason = ReasonShutdown
	}
	clear(c.queue)
	c.queue, c.spare, c.pending = nil, nil, 0
	c.freeRoomLocked()
	c.mu.Unlock()
	c.signal()
}

// kill marks the client closing for reason (unless it already was; the
// first reason wins and is returned), drops its queue, and unblocks its
// reader and writer. The connection itself is closed by Serve once both
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
	c.freeRoomLocked()
	w := c.parked
	c.parked = nil
	c.mu.Unlock()
	c.signal()
	c.t.SetReadDeadline(aLongTimeAgo())
	c.t.SetWriteDeadline(aLongTimeAgo())
	if w != nil {
		// A parked client is read again, and ends as a reader blocked
		// in a read would.
		w.Wake()
	}
	return reason
}

// writeLoop drains the queue: it takes every queued message at once and
// writes them in rounds of about coalesceSize bytes, each under the write
// deadline. A round's bytes leave the queue budget as soon as its write
// returns, not when the whole batch is out, so a receiver that reads as
// fast as it can is never taken for a slow one while a long batch is being
// written to it. It returns once the client is closing, or once the queue
// has stayed empty for writerLinger: kick starts another for the next
// message.
func (c *client) writeLoop() {
	defer c.writers.Done()
	// The writer waits on its wake channel alone, as cheap a wait as there
	// is, which a busy room pays at every burst; the linger timer runs
	// beside it (lingerTick), once a period, not once a wait.
	c.mu.Lock()
	c.lingerGen++
	gen := c.lingerGen
	t := time.AfterFunc(writerLinger, func() { c.lingerTick(gen) })
	c.linger = t
	c.mu.Unlock()
	defer t.Stop()
	for {
		c.mu.Lock()
		for (len(c.queue) == 0 || c.held) && !c.closing {
			if c.retire {
				c.retire, c.linger = false, nil
				c.writing.Store(false)
				c.spare = nil
				if len(c.queue) == 0 {
					c.queue = nil // whatever a burst grew it to
				}
				c.mu.Unlock()
				return
			}
			wake := c.wake
			c.mu.Unlock()
			<-wake
			c.mu.Lock()
		}
		if c.closing {
			c.linger = nil
			c.writing.Store(false)
			c.mu.Unlock()
			return
		}
		batch := c.queue
		c.queue = c.spare[:0]
		c.spare = nil
		c.mu.Unlock()

		err := c.writeBatch(batch)
		clear(batch) // let the shared messages go

		c.mu.Lock()
		c.writeFailed = err != nil && err != errSkipped
		c.wrote = true
		if !c.closing && (cap(batch) <= shrinkQueue || cap(batch) <= 4*len(batch)) {
			// Kept for the next batch unless a burst grew it to more
			// than four times what it held this time.
			c.spare = batch[:0]
		}
		if err != nil {
			c.linger = nil
			c.writing.Store(false)
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
	}
}

// writeBatch writes the batch in rounds, taking each round's bytes off
// pending once written.
func (c *client) writeBatch(batch [][]byte) error {
	framer, _ := c.t.(Framer)
	for len(batch) > 0 {
		// size counts the messages against the queue budget, wire what
		// they take written (their frames included) against one record.
		n, size, wire := 0, 0, 0
		for n < len(batch) {
			w := len(batch[n])
			if framer != nil {
				w = framer.FramedLen(w)
			}
			if n > 0 && wire+w > coalesceSize {
				break
			}
			size += len(batch[n])
			wire += w
			n++
		}
		if err := c.t.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteTimeout)); err != nil {
			return err
		}
		// kill sets closing before it cuts writes with a past deadline; a
		// kill that came before the deadline above was set is seen here.
		c.mu.Lock()
		closing := c.closing
		c.progress = time.Now()
		c.mu.Unlock()
		if closing {
			return errSkipped
		}
		if _, err := c.t.WriteMessages(batch[:n]); err != nil {
			return err
		}
		c.mu.Lock()
		if !c.closing {
			c.pending -= size
			c.progress = time.Now()
			if c.pending <= c.h.cfg.QueueBytes/2 {
				// Waiting senders are woken once half the budget is
				// free, not at every write: each then hands over a
				// run of messages rather than one before it waits
				// again.
				c.freeRoomLocked()
			}
		}
		c.mu.Unlock()
		batch = batch[n:]
	}
	return nil
}
