package peekconn

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
)

// TestReplay: bytes read ahead by several Fills come back first, in order,
// then the rest of the stream; a deadline during Fill is not kept, an end
// of stream is, after the bytes.
func TestReplay(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	c := New(server)
	if New(c) != c {
		t.Fatal("New of a *Conn made another one")
	}
	go func() {
		client.Write([]byte("ab"))
		client.Write([]byte("cdef"))
	}()
	c.Fill(3)
	c.Fill(3) // "ab" then at most one more
	if got := string(c.Peeked()); got != "abc" {
		t.Fatalf("peeked %q, want %q", got, "abc")
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := c.Fill(3); err != nil {
		t.Fatalf("Fill at its bound: %v, want nothing read and no error", err)
	}
	c.SetReadDeadline(time.Time{})
	if c.Fill(10); string(c.Peeked()) != "abcdef" {
		t.Fatalf("peeked %q, want %q", c.Peeked(), "abcdef")
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := c.Fill(10); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Fill past its deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	client.Close()
	got, err := io.ReadAll(c)
	if string(got) != "abcdef" || err != nil {
		t.Fatalf("read %q, %v; want %q and the end", got, err, "abcdef")
	}
}

// TestKeptError: an error that ends the read ahead comes after the bytes
// read before it, and Fill reads nothing more.
func TestKeptError(t *testing.T) {
	client, server := net.Pipe()
	c := New(server)
	go func() {
		client.Write([]byte("hi"))
		client.Close()
	}()
	c.Fill(16)
	if _, err := c.Fill(16); err != io.EOF {
		t.Fatalf("Fill after the end: %v, want EOF", err)
	}
	if _, err := c.Fill(16); err != io.EOF {
		t.Fatalf("Fill again: %v, want the kept EOF", err)
	}
	b := make([]byte, 8)
	if n, err := c.Read(b); string(b[:n]) != "hi" || err != nil {
		t.Fatalf("read %q, %v; want %q", b[:n], err, "hi")
	}
	if n, err := c.Read(b); n != 0 || err != io.EOF {
		t.Fatalf("read %d, %v; want EOF", n, err)
	}
}

// TestNewReplayingAndCloseWrite: bytes a parser read past what it needed
// come back first, then the stream; CloseWrite reaches the TCP connection
// under the Conn, so its peer sees the end while it can still write.
func TestNewReplayingAndCloseWrite(t *testing.T) {
	client, server := testutil.TCPPair(t)
	c := NewReplaying(server, []byte("past"))
	defer c.Close()
	client.Write([]byte(" the header"))
	client.CloseWrite()
	got, err := io.ReadAll(c)
	if string(got) != "past the header" || err != nil {
		t.Fatalf("read %q, %v; want %q", got, err, "past the header")
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("peer read %d, %v after CloseWrite; want EOF", n, err)
	}
	p1, p2 := net.Pipe()
	defer p2.Close()
	if err := New(p1).CloseWrite(); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("CloseWrite on a pipe: %v, want ErrUnsupported", err)
	}
}
