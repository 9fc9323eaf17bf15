package readiness

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Poller watches connections in one epoll set; see the package comment.
// Its methods are safe for concurrent use.
type Poller struct {
	ep   *os.File // the epoll set, non-blocking: Go's network poller watches it
	rc   syscall.RawConn
	epfd int // ep's descriptor (os.File.Fd would make it blocking); used under mu while not closed

	mu     sync.Mutex
	waits  map[uint64]*Wait
	next   uint64
	closed bool
	done   chan struct{} // closed when the loop has returned
}

// Wait is one armed connection.
type Wait struct {
	p   *Poller
	key uint64
	fd  int
	fn  func()
}

// watchEvents is what wakes a wait: bytes to read, the peer's half-close,
// and (always reported) hang-up and error. One-shot: the set reports a
// connection once, and the loop then takes it out.
const watchEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// NewPoller makes the epoll set and starts the goroutine that dispatches
// its events. Close stops it.
func NewPoller() (*Poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("readiness: epoll_create1: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("readiness: epoll set non-blocking: %w", err)
	}
	ep := os.NewFile(uintptr(fd), "epoll")
	rc, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return nil, fmt.Errorf("readiness: epoll set: %w", err)
	}
	p := &Poller{ep: ep, rc: rc, epfd: fd, waits: make(map[uint64]*Wait), done: make(chan struct{})}
	go p.loop()
	return p, nil
}

// Arm calls fn, in a goroutine of its own and once, when c's peer has sent
// bytes no read has taken, has closed its side, or c's socket has failed;
// at once when a layer Arm sees holds bytes read ahead. Disarm on the
// returned Wait takes it back. c must stay open while armed: Close it only
// after fn ran or Disarm took the wait back.
func (p *Poller) Arm(c net.Conn, fn func()) (*Wait, error) {
	sc, ok := socket(c)
	if !ok {
		return nil, ErrUnsupported
	}
	w := &Wait{p: p, fn: fn}
	if sc == nil {
		go fn()
		return w, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("readiness: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	p.next++
	w.key = p.next
	var ctlErr error
	err = rc.Control(func(fd uintptr) {
		w.fd = int(fd)
		ev := unix.EpollEvent{Events: watchEvents, Fd: int32(uint32(w.key)), Pad: int32(uint32(w.key >> 32))}
		ctlErr = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, w.fd, &ev)
	})
	if err == nil {
		err = ctlErr
	}
	if err != nil {
		return nil, fmt.Errorf("readiness: watching the connection: %w", err)
	}
	// Added under the lock: an event that comes at once waits for it.
	p.waits[w.key] = w
	return w, nil
}

// Disarm takes the wait back: it reports true when fn will not be called,
// false when it was called, or is being, already.
func (w *Wait) Disarm() bool {
	if w.key == 0 {
		return false // called at once by Arm
	}
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waits[w.key] != w {
		return false
	}
	p.removeLocked(w)
	return true
}

// Wake takes the wait back and calls its function at once, in a goroutine
// of its own, unless it was called, or is being, already: either way the
// function runs once. It reports whether it called it. A caller that ends
// what it watched uses it, so that whatever waits on the connection sees
// it end.
func (w *Wait) Wake() bool {
	if !w.Disarm() {
		return false
	}
	go w.fn()
	return true
}

// Close stops the Poller. Waits still armed are dropped without their
// function being called: disarm them first.
func (p *Poller) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	for _, w := range p.waits {
		p.removeLocked(w)
	}
	p.mu.Unlock()
	err := p.ep.Close() // ends the loop's wait
	<-p.done
	return err
}

// removeLocked forgets w and takes its socket out of the set. The socket is
// still open (Arm's rule), so its descriptor is still its own.
func (p *Poller) removeLocked(w *Wait) {
	delete(p.waits, w.key)
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, w.fd, nil)
}

// loop waits for the epoll set to have events, through Go's network poller,
// and starts the function of each connection reported.
func (p *Poller) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 128)
	for {
		n := 0
		var werr error
		err := p.rc.Read(func(fd uintptr) bool {
			n, werr = unix.EpollWait(int(fd), events, 0)
			if werr == unix.EINTR {
				n, werr = 0, nil
			}
			return n > 0 || werr != nil // nothing yet: wait, then ask again
		})
		if err != nil || werr != nil {
			if err == nil && !errors.Is(werr, os.ErrClosed) {
				// The set itself failed; the waits it holds can no
				// longer be told: call them, and let their reads say.
				p.failAll()
			}
			return
		}
		for _, ev := range events[:n] {
			key := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			p.mu.Lock()
			w := p.waits[key]
			if w != nil {
				p.removeLocked(w)
			}
			p.mu.Unlock()
			if w != nil {
				go w.fn()
			}
		}
	}
}

// failAll calls every armed wait's function.
func (p *Poller) failAll() {
	p.mu.Lock()
	var ws []*Wait
	for _, w := range p.waits {
		p.removeLocked(w)
		ws = append(ws, w)
	}
	p.closed = true
	p.mu.Unlock()
	for _, w := range ws {
		go w.fn()
	}
}
