package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// getConn is get's connection to the asset server: every read must bring
// something within the timeout, so a server that never answers (another
// service's port, which waits for its own protocol) or stops in the middle
// ends get instead of hanging it. It keeps the first bytes the server sent,
// to tell an ENVOIE answer from another protocol's.
type getConn struct {
	net.Conn
	ctx     context.Context
	timeout time.Duration

	mu    sync.Mutex
	first []byte // up to getConnFirst bytes of the answer
	got   int64
}

const getConnFirst = 128

func newGetConn(ctx context.Context, c net.Conn, timeout time.Duration) *getConn {
	return &getConn{Conn: c, ctx: ctx, timeout: timeout}
}

func (c *getConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	// The envoie client cancels a request by setting a deadline in the
	// past once ctx is done: never extend that one.
	if c.ctx.Err() != nil {
		_ = c.Conn.SetReadDeadline(time.Unix(1, 0))
	}
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if len(c.first) < getConnFirst {
		c.first = append(c.first, p[:min(n, getConnFirst-len(c.first))]...)
	}
	c.got += int64(n)
	c.mu.Unlock()
	return n, err
}

// explain rewrites a failed request's error in the words a user needs: a
// server silent for the timeout, or one whose answer is text rather than
// ENVOIE's 4-byte length (a chat relay, an echo server, a web server). It
// returns err unchanged otherwise, and whether it was rewritten.
func (c *getConn) explain(addr string, err error) (error, bool) {
	c.mu.Lock()
	first, got := string(c.first), c.got
	c.mu.Unlock()
	notEnvoie := fmt.Sprintf("%s does not seem to serve ENVOIE (passerelle's asset listener is port 10001 by default)", addr)
	switch {
	case c.ctx.Err() != nil:
		return err, false
	case got >= 4 && looksLikeText(firstLine(first)):
		return fmt.Errorf("%s: it answered %s", notEnvoie, strconv.Quote(firstLine(first))), true
	case errors.Is(err, os.ErrDeadlineExceeded) && got == 0:
		return fmt.Errorf("no answer within %s (--timeout): %s", c.timeout, notEnvoie), true
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("the server sent nothing for %s (--timeout)", c.timeout), false
	}
	return err, false
}

// firstLine is s up to its first line end or NUL (an XMLSocket message's
// end).
func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n\x00"); i >= 0 {
		s = s[:i]
	}
	return s
}

// looksLikeText reports text of at least 4 bytes (ENVOIE's length word): letters, digits, punctuation, spaces and line
// ends, as a text protocol's greeting or error is. An ENVOIE length word
// holds at least one byte outside these unless the file is over 538 MB
// (0x20202020 bytes).
func looksLikeText(s string) bool {
	if len(s) < 4 {
		return false
	}
	for _, r := range s {
		if r == unicode.ReplacementChar || (!unicode.IsPrint(r) && r != '\n' && r != '\r' && r != '\t') {
			return false
		}
	}
	return true
}
