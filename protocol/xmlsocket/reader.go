package xmlsocket

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// DefaultBufferSize is the size a Reader's read buffer starts at and returns
// to. It is kept small on purpose: XMLSocket messages are short. The buffer
// does grow, by doubling up to MaxBufferSize, but only while reads keep
// filling it (a busy sender), and it shrinks back to its starting size after
// a short read. A frame longer than the buffer is gathered in a slice that
// belongs to that frame and is handed to the caller, so the buffer's size
// never depends on the frames' sizes.
//
// A Reader made with a buffer of this size or less (a server's, holding one
// Reader per connection, most of them waiting) holds no buffer at all while
// its connection is idle: when nothing is buffered, the last read was short
// and the buffer is back at its starting size, it lets its buffer go and
// waits for the next bytes with a read of idleRead bytes into an array of
// its own. A source that hands on its bytes a message at a time (a
// WebSocket) makes every read short: such a source says when more is
// waiting in it (a Pending method, see NewReaderSize), and the Reader keeps
// its buffer then. A Reader made with a larger buffer (a client's, reading
// a busy stream) keeps it: the small read would cost it a second read for
// each burst.
const DefaultBufferSize = 512

// pender is a source that tells whether its next Read returns without
// waiting for the peer (see NewReaderSize).
type pender interface {
	Pending() bool
}

// idleRead is the size of the read a Reader waits with while it holds no
// buffer. A read that fills it takes a buffer at once for what follows.
const idleRead = 32

// MaxBufferSize is the size the read buffer may grow to while reads keep
// filling it (a busy sender), one TLS record (RFC 8446, section 5.1).
const MaxBufferSize = 16 << 10

// DefaultMaxFrame is the maximum frame size used when NewReader is given a
// maximum below 1.
const DefaultMaxFrame = 64 << 10

// maxEmptyReads bounds how many times in a row an io.Reader may return no
// data and no error before ReadFrame gives up with io.ErrNoProgress (as
// bufio.Reader does).
const maxEmptyReads = 100

// FrameTooLargeError reports a frame longer than the Reader's maximum. It is
// returned as soon as the limit is crossed; the rest of the frame is not read.
// The Reader is unusable afterwards: the stream is no longer at a frame
// boundary.
type FrameTooLargeError struct {
	// Max is the limit that was crossed, in bytes, the NUL included.
	Max int
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("xmlsocket: frame longer than the maximum of %d bytes", e.Max)
}

// Reader splits a byte stream into NUL-terminated frames.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	r   io.Reader
	max int

	// buf[start:end] holds bytes read from r and not yet returned.
	buf        []byte
	start, end int
	// minBuf is the size buf returns to once reads are small again; grow
	// and shrink are decided by the last read (see fill).
	minBuf, maxBuf int
	grow, shrink   bool
	// acc holds the beginning of a frame longer than buf, while it is being
	// read; it becomes the returned frame.
	acc []byte
	// err is a read error not yet reported: it is returned once, after the
	// bytes read before it (bufio.Reader's convention), so a read deadline
	// that fires is not fatal.
	err error
	// broken is set after a FrameTooLargeError.
	broken error
	// idle is what the Reader reads into while it holds no buffer (buf
	// nil); release says whether it lets its buffer go (see
	// DefaultBufferSize).
	idle    [idleRead]byte
	release bool
	pending pender // r, when it says what it holds
}

// NewReader returns a Reader over r that accepts frames of at most max bytes,
// the terminating NUL included. A max below 1 means DefaultMaxFrame.
func NewReader(r io.Reader, maxFrame int) *Reader {
	return NewReaderSize(r, maxFrame, DefaultBufferSize)
}

// NewReaderSize is NewReader with a read buffer of size bytes (at least 16).
// The buffer is independent of the maximum frame size: it may hold several
// frames, or part of one. When r has a method Pending() bool, reporting
// that its next Read returns without waiting for the peer (bytes it read
// ahead), the Reader keeps its buffer for that read, however short the last
// one was (see DefaultBufferSize).
func NewReaderSize(r io.Reader, maxFrame, size int) *Reader {
	if maxFrame < 1 {
		maxFrame = DefaultMaxFrame
	}
	size = max(size, 16)
	rd := &Reader{r: r, max: maxFrame, minBuf: size, maxBuf: max(size, MaxBufferSize),
		release: size <= DefaultBufferSize}
	rd.pending, _ = r.(pender)
	if !rd.release {
		rd.buf = make([]byte, size)
	}
	return rd
}

// ReadFrame returns the next frame, its terminating NUL included. The slice is
// newly allocated and belongs to the caller (a relay may hand it to many
// receivers without copying it).
//
// At the end of the stream ReadFrame returns io.EOF if no byte of a new frame
// was read, and io.ErrUnexpectedEOF if the stream ended inside a frame. A frame
// longer than the maximum gives a *FrameTooLargeError. Other read errors are
// returned as they are; if such an error is temporary (a read deadline), the
// bytes read so far are kept and the next call carries on with the same frame.
func (r *Reader) ReadFrame() ([]byte, error) {
	if r.broken != nil {
		return nil, r.broken
	}
	empty := 0
	for {
		if i := bytes.IndexByte(r.buf[r.start:r.end], 0); i >= 0 {
			n := i + 1
			if len(r.acc)+n > r.max {
				return nil, r.tooLarge()
			}
			var frame []byte
			if r.acc != nil {
				frame = append(r.acc, r.buf[r.start:r.start+n]...)
				r.acc = nil
			} else {
				frame = make([]byte, n)
				copy(frame, r.buf[r.start:r.start+n])
			}
			r.start += n
			if r.start == r.end {
				r.start, r.end = 0, 0
			}
			return frame, nil
		}
		// No NUL in the buffer: everything buffered belongs to the current
		// frame. A frame of max bytes or more without its NUL is too long.
		if len(r.acc)+r.end-r.start >= r.max {
			return nil, r.tooLarge()
		}
		if r.err != nil {
			err := r.err
			r.err = nil
			if err == io.EOF && (r.end > r.start || len(r.acc) > 0) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if r.start > 0 {
			// Move the partial frame to the front of the buffer.
			r.end = copy(r.buf, r.buf[r.start:r.end])
			r.start = 0
		}
		if r.buf != nil && r.end == len(r.buf) {
			// The buffer is full of one frame: move it out to the
			// frame's own slice and keep reading into the buffer.
			if r.acc == nil {
				r.acc = make([]byte, 0, min(2*len(r.buf), r.max))
			}
			r.acc = append(r.acc, r.buf[:r.end]...)
			r.end = 0
		}
		var n int
		var err error
		if r.end == 0 && r.acc == nil && (r.buf == nil || r.shrink && r.release && len(r.buf) == r.minBuf) &&
			(r.pending == nil || !r.pending.Pending()) {
			// Nothing buffered, the peer sent little last time, the
			// buffer is back at its starting size and the source holds
			// nothing more: wait for the next bytes without a buffer.
			// A buffer grown by a busy sender shrinks first: let go at
			// once, every burst would start again from a 32-byte read
			// and a small buffer, and the relay would wake its
			// receivers' writers for a few messages at a time rather
			// than once per burst.
			if n, err = r.readIdle(); n < 0 {
				return nil, errors.New("xmlsocket: reader returned an invalid count")
			}
		} else {
			r.resize()
			free := len(r.buf) - r.end
			n, err = r.r.Read(r.buf[r.end:])
			if n < 0 || n > free {
				return nil, errors.New("xmlsocket: reader returned an invalid count")
			}
			r.end += n
			// A read that fills most of the buffer means more is
			// waiting: take a bigger buffer next time, so a busy sender
			// is read with few system calls. A short read means the
			// burst is over: go back to the small buffer, then to none.
			r.grow = n == free && free >= len(r.buf)/2
			r.shrink = n < r.minBuf
		}
		r.err = err
		if n == 0 && err == nil {
			empty++
			if empty >= maxEmptyReads {
				return nil, io.ErrNoProgress
			}
		} else {
			empty = 0
		}
	}
}

// Ready reports whether a whole frame is already buffered, so that the next
// ReadFrame returns without reading. A relay uses it to batch work (such as
// waking writers) until it is about to wait for the network.
func (r *Reader) Ready() bool {
	return r.broken == nil && bytes.IndexByte(r.buf[r.start:r.end], 0) >= 0
}

// readIdle lets the buffer go and reads into r.idle; what came is moved
// into a fresh buffer of the starting size. It returns the read's count and
// error (a count out of range as -1).
func (r *Reader) readIdle() (int, error) {
	r.buf = nil
	r.grow = false
	wait := r.idle[:min(len(r.idle), r.minBuf)]
	n, err := r.r.Read(wait)
	if n < 0 || n > len(wait) {
		return -1, err
	}
	if n > 0 {
		r.buf = make([]byte, r.minBuf)
		r.end = copy(r.buf, r.idle[:n])
	}
	// A read that filled the array may have left more behind: the buffer
	// is kept for the next read. A shorter one lets it go again once the
	// frames in it are done.
	r.shrink = n < len(wait)
	return n, err
}

// resize applies the decision of the last read, before the next one.
func (r *Reader) resize() {
	switch {
	case r.buf == nil:
		r.buf = make([]byte, r.minBuf)
	case r.grow && len(r.buf) < r.maxBuf:
		nb := make([]byte, min(2*len(r.buf), r.maxBuf))
		r.end = copy(nb, r.buf[r.start:r.end])
		r.start = 0
		r.buf = nb
	case r.shrink && len(r.buf) > r.minBuf && r.end-r.start <= r.minBuf:
		nb := make([]byte, r.minBuf)
		r.end = copy(nb, r.buf[r.start:r.end])
		r.start = 0
		r.buf = nb
	}
	r.grow, r.shrink = false, false
}

func (r *Reader) tooLarge() error {
	r.acc = nil
	r.start, r.end = 0, 0
	r.broken = &FrameTooLargeError{Max: r.max}
	return r.broken
}
