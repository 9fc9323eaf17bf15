package policy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Sniff reads the first bytes of conn, for at most wait, to tell whether the
// peer is asking for the policy file. It reads no more than len(Request)
// bytes, and stops as soon as the bytes differ from Request, so nothing past
// the first read of an ordinary connection is consumed; the bytes read are
// returned in prefix and must be processed by the caller before the rest of
// the stream.
//
// isRequest is true when the peer sent exactly Request. When wait passes in
// silence (or in the middle of a prefix of Request) Sniff returns what it read
// with isRequest false and a nil error: a client that only listens is not a
// policy requester. err is set when the connection failed or ended; prefix
// may still hold bytes.
//
// Sniff sets conn's read deadline and clears it before returning.
func Sniff(conn net.Conn, wait time.Duration) (prefix []byte, isRequest bool, err error) {
	if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return nil, false, fmt.Errorf("policy: set read deadline: %w", err)
	}
	buf := make([]byte, len(Request))
	n := 0
	for n < len(buf) {
		m, rerr := conn.Read(buf[n:])
		n += m
		if string(buf[:n]) != Request[:n] {
			break // diverged: an ordinary connection
		}
		if rerr != nil {
			if errors.Is(rerr, os.ErrDeadlineExceeded) {
				break
			}
			err = rerr
			break
		}
	}
	if derr := conn.SetReadDeadline(time.Time{}); derr != nil && err == nil {
		err = fmt.Errorf("policy: clear read deadline: %w", derr)
	}
	return buf[:n], n == len(Request) && string(buf) == Request, err
}
