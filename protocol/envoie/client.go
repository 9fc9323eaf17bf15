package envoie

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Client speaks ENVOIE and its extensions over one connection (TLS or
// plain; dialing is the caller's business). Requests are sent one at a
// time. After a *RemoteError the server has closed the connection: dial
// again for the next request.
//
// What the server sends is returned as it came: a *RemoteError's Code and
// Message and an Entry's Name may hold any bytes, control characters
// included. Escape them before showing them on a terminal (passerelle get
// uses internal/termsafe).
type Client struct {
	conn net.Conn
	br   *bufio.Reader
	buf  []byte
}

// clientBuffer is what a download costs on the client side.
const clientBuffer = 64 << 10

// NewClient wraps an established connection.
func NewClient(conn net.Conn) *Client {
	return &Client{conn: conn, br: bufio.NewReaderSize(conn, clientBuffer)}
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Get downloads name into w. progress, if not nil, is called with the bytes
// received so far and the file's size, first with 0 as soon as the size is
// known. A nil error means w received exactly the announced number of
// bytes; a connection that ends early gives an error wrapping
// io.ErrUnexpectedEOF; a refusal gives a *RemoteError.
func (c *Client) Get(ctx context.Context, name string, w io.Writer, progress func(n, total int64)) error {
	return c.GetFrom(ctx, name, 0, w, progress)
}

// GetFrom downloads name from byte offset on (the REPRENDS extension; with
// offset 0 it sends a plain ENVOIE, as the seed's clients do). progress
// counts from offset, and total is the whole file's size.
func (c *Client) GetFrom(ctx context.Context, name string, offset int64, w io.Writer, progress func(n, total int64)) error {
	req := Request{Command: CmdSend, Name: name}
	if offset > 0 {
		req = Request{Command: CmdResume, Name: name, Offset: offset}
	}
	if progress == nil {
		progress = func(int64, int64) {}
	}
	return c.do(ctx, req, func(size int64) error {
		total := offset + size
		progress(offset, total)
		if c.buf == nil {
			c.buf = make([]byte, clientBuffer)
		}
		// Fill the buffer from several TLS records before each write:
		// fewer, larger writes to the file.
		var got int64
		for got < size {
			n, err := io.ReadFull(c.br, c.buf[:min(int64(len(c.buf)), size-got)])
			if n > 0 {
				if _, werr := w.Write(c.buf[:n]); werr != nil {
					return fmt.Errorf("write %s: %w", name, werr)
				}
				got += int64(n)
				progress(offset+got, total)
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("receive %s: connection ended after %d of %d bytes: %w", name, offset+got, total, err)
			}
		}
		return nil
	})
}

// Digest returns the server's SHA-256 of name as "sha256:<hex>" (the
// EMPREINTE extension).
func (c *Client) Digest(ctx context.Context, name string) (string, error) {
	body, err := c.small(ctx, Request{Command: CmdDigest, Name: name}, 128)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(body, "sha256:") {
		return "", fmt.Errorf("digest of %s: unexpected answer %q", name, body)
	}
	return body, nil
}

// List returns the entries of a folder ("" for the root; the LISTE
// extension).
func (c *Client) List(ctx context.Context, dir string) ([]Entry, error) {
	body, err := c.small(ctx, Request{Command: CmdList, Name: dir}, maxListing)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for line := range strings.Lines(body) {
		size, name, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
		if !ok {
			return nil, fmt.Errorf("listing: malformed line %q", line)
		}
		if size == "-" {
			out = append(out, Entry{Name: name, Size: -1, IsDir: true})
			continue
		}
		n, err := strconv.ParseInt(size, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("listing: malformed size in %q", line)
		}
		out = append(out, Entry{Name: name, Size: n})
	}
	return out, nil
}

// small runs a request whose answer is a short text body.
func (c *Client) small(ctx context.Context, req Request, limit int64) (string, error) {
	var body []byte
	err := c.do(ctx, req, func(size int64) error {
		if size > limit {
			return fmt.Errorf("%s: answer of %d bytes is larger than %d", req.Command, size, limit)
		}
		body = make([]byte, size)
		if _, err := io.ReadFull(c.br, body); err != nil {
			return fmt.Errorf("%s: read answer: %w", req.Command, err)
		}
		return nil
	})
	return string(body), err
}

// do sends req, reads the length word and hands the body to read.
func (c *Client) do(ctx context.Context, req Request, read func(size int64) error) error {
	if err := checkSendable(req.Name); err != nil {
		return err
	}
	// Cancellation wakes up a blocked read or write.
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	err := c.exchange(req, read)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%s %s: %w", req.Command, req.Name, ctx.Err())
	}
	return err
}

func (c *Client) exchange(req Request, read func(size int64) error) error {
	if _, err := io.WriteString(c.conn, req.String()); err != nil {
		return fmt.Errorf("send request: %w", err)
	}
	size, err := ReadHeader(c.br)
	if err != nil {
		return err
	}
	return read(size)
}

// checkSendable refuses, locally, names that would change the framing of
// the request; everything else is for the server to judge.
func checkSendable(name string) error {
	if strings.ContainsAny(name, "\r\n\x00") {
		return fmt.Errorf("name %s contains a line end or NUL byte and cannot be sent", quoteName(name))
	}
	return nil
}
