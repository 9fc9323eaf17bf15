package envoie

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// scriptedConn plays a fixed input to ServeConn and records what it writes;
// its end of input is an immediate EOF, so a fuzz run never waits.
type scriptedConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *scriptedConn) Read(p []byte) (int, error)         { return c.in.Read(p) }
func (c *scriptedConn) Write(p []byte) (int, error)        { return c.out.Write(p) }
func (c *scriptedConn) Close() error                       { return nil }
func (c *scriptedConn) LocalAddr() net.Addr                { return &net.TCPAddr{Port: 10001} }
func (c *scriptedConn) RemoteAddr() net.Addr               { return &net.TCPAddr{Port: 50000} }
func (c *scriptedConn) SetDeadline(t time.Time) error      { return nil }
func (c *scriptedConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *scriptedConn) SetWriteDeadline(t time.Time) error { return nil }

// FuzzServeConn feeds arbitrary client bytes to the server and checks that
// what comes back is always well framed: answers, and at most one error
// response, only as the last thing sent. (A policy request is the
// listener's business: here it is just bytes.)
func FuzzServeConn(f *testing.F) {
	for _, s := range []string{
		"ENVOIE:blason.png\r\nENVOIE bienvenue.txt\n",
		"REPRENDS 10 donnees.bin\nEMPREINTE blason.png\nLISTE\n",
		"ENVOIE ../x\n", "<policy-file-request/>\x00", "GET / HTTP/1.1\r\n\r\n",
		"\n\n\nENVOIE", "LISTE ..\n", "REPRENDS 99999999999 blason.png\n",
	} {
		f.Add([]byte(s))
	}
	srv := &Server{Files: Samples(), MaxRequest: 256}
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &scriptedConn{in: bytes.NewReader(in)}
		srv.ServeConn(context.Background(), c)
		out := c.out.Bytes()
		r := bytes.NewReader(out)
		for r.Len() > 0 {
			n, err := ReadHeader(r)
			var re *RemoteError
			if errors.As(err, &re) {
				if r.Len() != 0 {
					t.Fatalf("%d bytes after an error response", r.Len())
				}
				return
			}
			if err != nil {
				t.Fatalf("malformed answer: %v\nin %q\nout % x", err, in, out)
			}
			if _, err := io.CopyN(io.Discard, r, n); err != nil {
				t.Fatalf("answer shorter than its length %d", n)
			}
		}
	})
}
