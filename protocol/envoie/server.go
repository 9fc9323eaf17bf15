package envoie

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/passerelle/passerelle/protocol/policy"
)

// Defaults of the Server's zero-valued fields.
const (
	DefaultIdleTimeout  = 2 * time.Minute
	DefaultWriteTimeout = time.Minute
	DefaultBufferSize   = 64 << 10
)

// Server answers ENVOIE requests on connections it is handed, already
// accepted (and, for TLS, wrapped) by the caller's accept loop, for example a
// secure.Server whose handler calls ServeConn. A Server is safe for
// concurrent use and must not be copied after first use.
type Server struct {
	// Files is the tree served. Required.
	Files Files
	// Logger receives one line per transfer and per refusal; nil discards.
	Logger *slog.Logger
	// MaxRequest bounds a request line, line end included (default
	// DefaultMaxRequest, at least 64). It is also the size of the
	// connection's read buffer.
	MaxRequest int
	// IdleTimeout is how long a connection may wait between requests
	// (default DefaultIdleTimeout).
	IdleTimeout time.Duration
	// WriteTimeout is how long a transfer may make no progress before the
	// connection is dropped (default DefaultWriteTimeout): a client that
	// stops reading cannot pin a file and a buffer forever.
	WriteTimeout time.Duration
	// BufferSize is the copy buffer per transfer (default
	// DefaultBufferSize): the memory a transfer costs, whatever the size of
	// the file.
	BufferSize int
	// Policy is the cross-domain policy document sent, followed by a NUL,
	// when a connection's first message is a policy-file request. Nil sends
	// a policy allowing every domain to this listener's port.
	Policy []byte

	bufs sync.Pool // *[]byte of BufferSize
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
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
// is refused, the connection idles past IdleTimeout, or ctx is cancelled. It
// closes conn before returning and leaves nothing behind.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	log := s.logger().With("remote_addr", conn.RemoteAddr().String())
	// Cancellation unblocks any read or write in progress; the loop then
	// sees the deadline error and returns.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	br := bufio.NewReaderSize(conn, s.maxRequest())
	for first := true; ; first = false {
		if err := conn.SetReadDeadline(time.Now().Add(s.idleTimeout())); err != nil {
			return
		}
		if first {
			// A Flash player asks for the policy file first, with a NUL
			// and no line end (see protocol/policy).
			if b, err := br.Peek(1); err == nil && b[0] == '<' {
				s.servePolicy(conn, br, log)
				return
			}
		}
		line, err := readLine(br, '\n')
		if err != nil {
			s.endRead(ctx, conn, log, err)
			return
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue // a stray blank line asks for nothing
		}
		req, err := ParseRequest(line)
		if err == nil {
			err = s.handle(ctx, conn, req, log)
		}
		if err != nil {
			var r *refusal
			if errors.As(err, &r) {
				s.refuse(conn, log, req, r)
			} else if ctx.Err() != nil {
				log.Info("envoie: transfer stopped by shutdown", "name", req.Name)
			} else {
				// Usually a client that hung up mid-file: worth a line,
				// not an alarm.
				log.Info("envoie: transfer aborted", "name", req.Name, "error", err)
			}
			return
		}
	}
}

// endRead logs why reading the next request stopped and answers an
// over-long line.
func (s *Server) endRead(ctx context.Context, conn net.Conn, log *slog.Logger, err error) {
	var ne net.Error
	switch {
	case errors.Is(err, errLineTooLong):
		s.refuse(conn, log, Request{}, refuse(CodeBadRequest, "request line longer than %d bytes", s.maxRequest()))
	case errors.Is(err, io.EOF):
		// The client is done.
	case ctx.Err() != nil:
		log.Debug("envoie: connection closed by shutdown")
	case errors.As(err, &ne) && ne.Timeout():
		log.Info("envoie: idle connection closed", "idle", s.idleTimeout())
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
	log.Info("envoie: request refused", "command", req.Command, "name", req.Name, "code", string(r.code), "message", r.msg, "error", r.err)
	_ = conn.SetWriteDeadline(time.Now().Add(s.writeTimeout()))
	if _, err := conn.Write(AppendError(nil, r.code, r.msg)); err != nil {
		return
	}
	linger := 250 * time.Millisecond
	if cw, ok := conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		linger = time.Second // the client sees the end now and will hang up
	}
	_ = conn.SetReadDeadline(time.Now().Add(linger))
	_, _ = io.CopyN(io.Discard, conn, 256<<10)
}

func (s *Server) handle(ctx context.Context, conn net.Conn, req Request, log *slog.Logger) error {
	switch req.Command {
	case CmdSend, CmdResume:
		return s.send(ctx, conn, req, log)
	case CmdDigest:
		return s.digest(ctx, conn, req, log)
	case CmdList:
		return s.list(conn, req, log)
	}
	return refuse(CodeUnknownCommand, "unknown command %q", req.Command)
}

// send streams one file: the length word, then exactly that many bytes, in
// memory that does not depend on the file's size.
func (s *Server) send(ctx context.Context, conn net.Conn, req Request, log *slog.Logger) error {
	f, size, err := s.open(req.Name)
	if err != nil {
		return err
	}
	defer f.Close()
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
	if err != nil {
		return fmt.Errorf("send %s after %d of %d bytes: %w", req.Name, sent, remaining, err)
	}
	log.Info("envoie: sent", "command", req.Command, "name", req.Name, "offset", req.Offset, "bytes", sent, "duration", time.Since(start))
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

// open opens a regular file and returns its size, or a refusal.
func (s *Server) open(name string) (readFile, int64, error) {
	if s.Files == nil {
		return nil, 0, refuse(CodeUnavailable, "no files are served here")
	}
	f, err := s.Files.Open(name)
	if err != nil {
		return nil, 0, classifyOpen(name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, classifyOpen(name, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, refuse(CodeNotRegular, "%s is %s, not a file", quoteName(name), describeMode(st.Mode()))
	}
	if st.Size() > MaxFileSize {
		f.Close()
		return nil, 0, refuse(CodeTooLarge, "%s is %d bytes, more than the %d an ENVOIE length can announce", quoteName(name), st.Size(), uint64(MaxFileSize))
	}
	return f, st.Size(), nil
}

// readFile is what open returns: fs.File without the Stat we already used.
type readFile interface {
	io.Reader
	io.Closer
}

// skip moves to offset, by seeking when the file can.
func skip(f readFile, offset int64) error {
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

// servePolicy answers a policy-file request and ends the connection, as
// Flash expects; anything else starting with '<' is refused.
func (s *Server) servePolicy(conn net.Conn, br *bufio.Reader, log *slog.Logger) {
	line, err := readLine(br, 0)
	if err != nil {
		if errors.Is(err, errLineTooLong) {
			s.refuse(conn, log, Request{}, refuse(CodeBadRequest, "request line longer than %d bytes", s.maxRequest()))
		}
		return
	}
	if !policy.IsRequest(line) {
		s.refuse(conn, log, Request{}, refuse(CodeUnknownCommand, "unknown command; expected ENVOIE followed by a file name"))
		return
	}
	doc := s.policyResponse(conn.LocalAddr())
	_ = conn.SetWriteDeadline(time.Now().Add(s.writeTimeout()))
	if _, err := conn.Write(doc); err != nil {
		log.Debug("envoie: write policy", "error", err)
		return
	}
	log.Info("envoie: policy file sent")
}
