package envoie

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/passerelle/passerelle/internal/ratelog"
)

// Defaults of the Server's zero-valued fields (DefaultMaxRequest is with
// the protocol's limits; MaxDigests defaults to half the CPUs, at least one).
const (
	DefaultIdleTimeout    = 2 * time.Minute
	DefaultRequestTimeout = 10 * time.Second
	DefaultWriteTimeout   = time.Minute
	DefaultBufferSize     = 64 << 10
	DefaultDigestWait     = 30 * time.Second
)

// Server answers ENVOIE requests on connections it is handed, already
// accepted, through TLS and past the policy-file check, by the caller's
// accept loop, for example a secure.Server whose handler calls ServeConn. A
// Server is safe for concurrent use and must not be copied after first use.
type Server struct {
	// Files is the tree served. Required.
	Files Files
	// Logger receives a debug line per answered request and an info line
	// per refusal, aborted transfer and timed-out connection, the latter
	// rate-limited across the Server (internal/ratelog: one line of each
	// kind every ratelog.DefaultEvery, with the count of those held back)
	// so that no peer can flood it; nil discards.
	Logger *slog.Logger
	// MaxRequest bounds a request line, line end included (default
	// DefaultMaxRequest, at least 64). It is also the size of the
	// connection's read buffer.
	MaxRequest int
	// IdleTimeout is how long a connection may wait for the first byte of
	// its next request (default DefaultIdleTimeout).
	IdleTimeout time.Duration
	// RequestTimeout is how long a request line may take in all, from its
	// first byte to its line end (default DefaultRequestTimeout): a client
	// trickling a byte at a time cannot hold a connection for longer.
	RequestTimeout time.Duration
	// WriteTimeout is how long a transfer may make no progress before the
	// connection is dropped (default DefaultWriteTimeout): a client that
	// stops reading cannot pin a file and a buffer forever.
	WriteTimeout time.Duration
	// BufferSize is the copy buffer per transfer (default
	// DefaultBufferSize): the memory a transfer costs, whatever the size of
	// the file.
	BufferSize int
	// MaxDigests is how many EMPREINTE digests this Server computes at
	// once (default half the CPUs, at least one). Answers from the digest
	// cache do not count.
	MaxDigests int
	// DigestWait is how long an EMPREINTE request may wait for one of the
	// MaxDigests slots before it is refused as busy (default
	// DefaultDigestWait).
	DigestWait time.Duration
	// Observer, if set, is told of every refusal and transfer (metrics);
	// nil costs nothing.
	Observer Observer

	bufs sync.Pool // *[]byte of BufferSize
	dig  digester

	peerLog ratelog.Lazy // the info lines a peer can cause
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// logLimited writes an info line a peer caused, through the Server's one
// rate-limited logger: key names the kind of line (a fixed word, never
// what the peer sent), and each kind is written at most once every
// ratelog.DefaultEvery, with the count of the lines held back.
func (s *Server) logLimited(log *slog.Logger, key, msg string, args ...any) {
	s.peerLog.Get(s.Logger).LogTo(context.Background(), log, slog.LevelInfo, key, msg, args...)
}

func (s *Server) maxRequest() int {
	if s.MaxRequest <= 0 {
		return DefaultMaxRequest
	}
	return max(s.MaxRequest, 64)
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout <= 0 {
		return DefaultIdleTimeout
	}
	return s.IdleTimeout
}

func (s *Server) requestTimeout() time.Duration {
	if s.RequestTimeout <= 0 {
		return DefaultRequestTimeout
	}
	return s.RequestTimeout
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout <= 0 {
		return DefaultWriteTimeout
	}
	return s.WriteTimeout
}

func (s *Server) getBuf() *[]byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		return b
	}
	size := s.BufferSize
	if size <= 0 {
		size = DefaultBufferSize
	}
	b := make([]byte, max(size, 512))
	return &b
}

// ServeConn answers requests on conn until the client closes it, a request
// is refused, the connection idles past IdleTimeout, a request line takes
// longer than RequestTimeout, or ctx is cancelled. It closes conn before
// returning and leaves nothing behind.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) {
	log := s.logger().With("remote_addr", conn.RemoteAddr().String())
	// Cancellation unblocks any read or write in progress; the loop then
	// sees the deadline error and returns.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	if s.serve(ctx, conn, log) {
		hardClose(conn)
	} else {
		_ = conn.Close()
	}
	stop()
}

// serve runs the request loop. It reports whether a response was cut short,
// in which case the connection must end without a TLS close alert.
func (s *Server) serve(ctx context.Context, conn net.Conn, log *slog.Logger) (cut bool) {
	br := bufio.NewReaderSize(conn, s.maxRequest())
	for ctx.Err() == nil {
		if br.Buffered() == 0 {
			// Waiting for the next request: the idle timeout.
			if err := conn.SetReadDeadline(time.Now().Add(s.idleTimeout())); err != nil {
				return false
			}
			if _, err := br.Peek(1); err != nil {
				s.endRead(ctx, conn, log, err, false)
				return false
			}
		}
		// A request has begun: the whole line is due within the request
		// timeout, however its bytes are spread.
		if err := conn.SetReadDeadline(time.Now().Add(s.requestTimeout())); err != nil {
			return false
		}
		line, err := readLine(br)
		if err != nil {
			s.endRead(ctx, conn, log, err, true)
			return false
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue // a stray blank line asks for nothing
		}
		req, err := ParseRequest(line)
		if err == nil {
			err = s.handle(ctx, conn, br, req, log)
		}
		if err != nil {
			var r *refusal
			switch {
			case errors.As(err, &r):
				s.refuse(conn, log, req, r)
			case ctx.Err() != nil:
				log.Info("envoie: transfer stopped by shutdown", "name", req.Name)
			default:
				// Usually a client that hung up mid-file: worth a line,
				// not an alarm, and not one per connection of a
				// connect-and-leave flood.
				s.logLimited(log, "envoie_aborted", "envoie: transfer aborted", "command", req.Command, "name", req.Name, "error", err)
			}
			return r == nil
		}
	}
	log.Debug("envoie: connection closed by shutdown")
	return false
}

// endRead logs why reading a request stopped, and answers an over-long or
// over-slow line. inLine says whether a request had begun.
func (s *Server) endRead(ctx context.Context, conn net.Conn, log *slog.Logger, err error, inLine bool) {
	var ne net.Error
	switch {
	case errors.Is(err, errLineTooLong):
		s.refuse(conn, log, Request{}, refuse(CodeBadRequest, "request line longer than %d bytes", s.maxRequest()))
	case errors.Is(err, io.EOF):
		// The client is done.
	case ctx.Err() != nil:
		log.Debug("envoie: connection closed by shutdown")
	case errors.As(err, &ne) && ne.Timeout() && inLine:
		s.refuse(conn, log, Request{}, refuse(CodeBadRequest, "request line not complete within %s", s.requestTimeout()))
	case errors.As(err, &ne) && ne.Timeout():
		s.logLimited(log, "envoie_idle", "envoie: idle connection closed", "idle", s.idleTimeout())
	default:
		log.Debug("envoie: read request", "error", err)
	}
}

// refuse sends an error response and lets the connection close. The client
// may have sent more requests already; closing with those bytes unread would
// make the kernel answer with a reset that can destroy the error response in
// flight. So the server shuts down its side when it can (the client then sees
// the end at once), and reads off what the client already sent for a moment
// before closing.
func (s *Server) refuse(conn net.Conn, log *slog.Logger, req Request, r *refusal) {
	s.observeRefused(r.code)
	code, msg := r.answer(req.Name)
	args := []any{"command", req.Command, "name", req.Name, "code", string(r.code), "message", r.msg, "error", r.err}
	if code != r.code || msg != r.msg {
		args = append(args, "answered", string(code))
	}
	s.logLimited(log, "envoie_refused_"+string(r.code), "envoie: request refused", args...)
	_ = conn.SetWriteDeadline(time.Now().Add(s.writeTimeout()))
	if _, err := conn.Write(AppendError(nil, code, msg)); err != nil {
		return
	}
	linger := 250 * time.Millisecond
	if cw, ok := conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		linger = time.Second // the client sees the end now and will hang up
	}
	_ = conn.SetReadDeadline(time.Now().Add(linger))
	_, _ = io.CopyN(io.Discard, conn, 256<<10)
}

// handle answers one request. br is the connection's reader, which a digest
// watches for the client leaving.
func (s *Server) handle(ctx context.Context, conn net.Conn, br *bufio.Reader, req Request, log *slog.Logger) error {
	switch req.Command {
	case CmdSend, CmdResume:
		return s.send(ctx, conn, req, log)
	case CmdDigest:
		return s.digest(ctx, conn, br, req, log)
	case CmdList:
		return s.list(conn, req, log)
	}
	return refuse(CodeUnknownCommand, "unknown command %q", req.Command)
}

// send streams one file: the length word, then exactly that many bytes, in
// memory that does not depend on the file's size.
func (s *Server) send(ctx context.Context, conn net.Conn, req Request, log *slog.Logger) error {
	f, st, err := s.open(req.Name)
	if err != nil {
		return err
	}
	defer f.Close()
	size := st.Size()
	if req.Offset > size {
		return refuse(CodeBadOffset, "offset %d is past the end of %s (%d bytes)", req.Offset, quoteName(req.Name), size)
	}
	if req.Offset > 0 {
		if err := skip(f, req.Offset); err != nil {
			return &refusal{code: CodeUnavailable, msg: fmt.Sprintf("%s cannot be read", quoteName(req.Name)), err: err}
		}
	}
	remaining := size - req.Offset
	start := time.Now()
	var sent int64
	if osf, ok := f.(*os.File); ok && remaining > 0 {
		if rf, ok := conn.(io.ReaderFrom); ok {
			// A plain TCP connection: the kernel copies file to socket
			// (sendfile), no buffer at all.
			sent, err = s.sendDirect(ctx, conn, rf, osf, remaining)
		} else {
			sent, err = s.sendBuffered(ctx, conn, f, remaining)
		}
	} else {
		sent, err = s.sendBuffered(ctx, conn, f, remaining)
	}
	s.observeSent(sent, err == nil)
	if err != nil {
		return fmt.Errorf("send %s after %d of %d bytes: %w", req.Name, sent, remaining, err)
	}
	log.Debug("envoie: sent", "command", req.Command, "name", req.Name, "offset", req.Offset, "bytes", sent, "duration", time.Since(start))
	return nil
}

// errShrank: the file ended before the length already promised. The only
// honest move left is to close, leaving the client short.
var errShrank = errors.New("the file ended early")

// sendBuffered sends the length word and the file through one pooled
// buffer, whatever the file's size.
func (s *Server) sendBuffered(ctx context.Context, conn net.Conn, f io.Reader, remaining int64) (int64, error) {
	bp := s.getBuf()
	defer s.bufs.Put(bp)
	buf := *bp
	// The length word goes out with the first chunk: one TLS record and
	// one system call instead of a separate 4-byte record.
	head := len(AppendHeader(buf[:0], remaining))
	w := &progressWriter{conn: conn, timeout: s.writeTimeout()}
	var sent int64
	for sent < remaining || head > 0 {
		want := int(min(int64(len(buf)-head), remaining-sent))
		n, rerr := io.ReadAtLeast(f, buf[head:head+want], min(want, 1))
		if n > 0 || head > 0 {
			if _, err := w.Write(buf[:head+n]); err != nil {
				return sent, err
			}
			sent += int64(n)
			head = 0
		}
		if rerr != nil && sent < remaining {
			return sent, fmt.Errorf("%w: %w", errShrank, rerr)
		}
		if err := ctx.Err(); err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// directChunk is how much one sendfile call may send before the deadline is
// pushed forward and cancellation looked at.
const directChunk = 4 << 20

// sendDirect sends the length word, then lets the connection pull the file
// itself (net.TCPConn.ReadFrom uses sendfile(2) for an *os.File).
func (s *Server) sendDirect(ctx context.Context, conn net.Conn, rf io.ReaderFrom, f *os.File, remaining int64) (int64, error) {
	w := &progressWriter{conn: conn, timeout: s.writeTimeout()}
	if _, err := w.Write(AppendHeader(nil, remaining)); err != nil {
		return 0, err
	}
	var sent int64
	for sent < remaining {
		chunk := min(remaining-sent, directChunk)
		if err := conn.SetWriteDeadline(time.Now().Add(s.writeTimeout())); err != nil {
			return sent, err
		}
		n, err := rf.ReadFrom(io.LimitReader(f, chunk))
		sent += n
		if err != nil {
			return sent, err
		}
		if n < chunk {
			return sent, errShrank
		}
		if err := ctx.Err(); err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// open opens a regular file and returns it with what Stat said of it, or a
// refusal.
func (s *Server) open(name string) (fs.File, fs.FileInfo, error) {
	if s.Files == nil {
		return nil, nil, refuse(CodeUnavailable, "no files are served here")
	}
	f, err := s.Files.Open(name)
	if err != nil {
		return nil, nil, classifyOpen(name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, classifyOpen(name, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, notRegular(name, st.Mode())
	}
	if st.Size() > MaxFileSize {
		f.Close()
		return nil, nil, refuse(CodeTooLarge, "%s is %d bytes, more than the %d an ENVOIE length can announce", quoteName(name), st.Size(), uint64(MaxFileSize))
	}
	return f, st, nil
}

// skip moves to offset, by seeking when the file can.
func skip(f io.Reader, offset int64) error {
	if sk, ok := f.(io.Seeker); ok {
		_, err := sk.Seek(offset, io.SeekStart)
		return err
	}
	_, err := io.CopyN(io.Discard, f, offset)
	return err
}

// progressWriter pushes the write deadline forward as bytes go out, at most
// once a second: a slow but moving client is fine, a stuck one is dropped
// after the write timeout.
type progressWriter struct {
	conn     net.Conn
	timeout  time.Duration
	deadline time.Time
}

func (w *progressWriter) Write(p []byte) (int, error) {
	now := time.Now()
	if w.deadline.Sub(now) < w.timeout-time.Second {
		w.deadline = now.Add(w.timeout)
		if err := w.conn.SetWriteDeadline(w.deadline); err != nil {
			return 0, err
		}
	}
	return w.conn.Write(p)
}

// hardClose ends conn after a response was cut short: through its Abort
// method when it has one (the listener's connections do, and skip the TLS
// close alert that would otherwise follow half a record), else through
// Close.
func hardClose(conn net.Conn) {
	if a, ok := conn.(interface{ Abort() error }); ok {
		_ = a.Abort()
		return
	}
	_ = conn.Close()
}
