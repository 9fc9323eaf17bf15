package envoie

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
)

func TestGetSizes(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"empty":           {},
		"one":             {'x'},
		"big/several.bin": randomBytes(t, 5<<20+123),
		"with space.txt":  []byte("spaces are part of names\n"),
		"accentué.txt":    []byte("é"),
	}
	for name, data := range files {
		writeFile(t, dir, name, data)
	}
	ts := startServer(t, openDir(t, dir), nil)
	c := ts.client(t) // one connection for every request
	for name, want := range files {
		t.Run(name, func(t *testing.T) {
			var got bytes.Buffer
			var calls int
			var last, total int64
			err := c.Get(context.Background(), name, &got, func(n, tot int64) { calls++; last, total = n, tot })
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("got %d bytes, want %d (content differs)", got.Len(), len(want))
			}
			if calls == 0 || last != int64(len(want)) || total != int64(len(want)) {
				t.Fatalf("progress: %d calls, last (%d, %d), want last (%d, %d)", calls, last, total, len(want), len(want))
			}
		})
	}
}

// readSeedStyle reads a response the way the seed's ActionScript client
// does: readUnsignedInt, then bytes accumulated until there are that many.
func readSeedStyle(t *testing.T, r io.Reader) []byte {
	t.Helper()
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		t.Fatalf("read length: %v", err)
	}
	data := make([]byte, binary.BigEndian.Uint32(l[:]))
	if _, err := io.ReadFull(r, data); err != nil {
		t.Fatalf("read data: %v", err)
	}
	return data
}

// TestSeedClient speaks exactly as the ChargeurFlux client of seed 000:
// both separators, both line ends, several requests on one TLS connection.
func TestSeedClient(t *testing.T) {
	ts := startServer(t, Samples(), nil)
	want, err := samples.ReadFile("samples/blason.png")
	if err != nil {
		t.Fatal(err)
	}
	conn := ts.dial(t)
	for _, req := range []string{
		"ENVOIE:blason.png\r\n", // the seed's first listing
		"ENVOIE blason.png\r\n", // ChargeurFlux.charge
		"ENVOIE:blason.png\n",
		"ENVOIE blason.png\n",
	} {
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		if got := readSeedStyle(t, conn); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %d bytes, want the %d of blason.png", req, len(got), len(want))
		}
	}
	// Pipelined: all requests written before any answer is read.
	if _, err := io.WriteString(conn, "ENVOIE bienvenue.txt\r\n\r\nENVOIE:donnees.bin\nENVOIE blason.png\r\n"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bienvenue.txt", "donnees.bin", "blason.png"} {
		want, _ := samples.ReadFile("samples/" + name)
		if got := readSeedStyle(t, conn); !bytes.Equal(got, want) {
			t.Fatalf("pipelined %s: got %d bytes, want %d", name, len(got), len(want))
		}
	}
}

// TestErrorNeverCompletes checks what a seed client sees on a refusal: a
// length it can never reach, then the end of the connection.
func TestErrorNeverCompletes(t *testing.T) {
	ts := startServer(t, Samples(), nil)
	conn := ts.dial(t)
	if _, err := io.WriteString(conn, "ENVOIE:absent.png\r\n"); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read until close: %v", err)
	}
	if n := binary.BigEndian.Uint32(all); n != 0xFFFFFFFF {
		t.Fatalf("length word %#x, want 0xFFFFFFFF", n)
	}
	if len(all)-4 >= 0xFFFFFFFF {
		t.Fatal("impossible")
	}
	text := `not_found: no such file "absent.png"`
	want := AppendError(nil, CodeNotFound, `no such file "absent.png"`)
	if !bytes.Equal(all, want) || !bytes.HasSuffix(all, []byte(text)) {
		t.Fatalf("got % x, want % x", all, want)
	}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func TestTooLarge(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "huge.bin"))
	must(t, err)
	must(t, f.Truncate(MaxFileSize+1)) // sparse: takes no space
	must(t, f.Close())
	ts := startServer(t, openDir(t, dir), nil)
	err = ts.client(t).Get(context.Background(), "huge.bin", io.Discard, nil)
	remoteErr(t, err, CodeTooLarge, `"huge.bin" is 4294967295 bytes, more than the 4294967294 an ENVOIE length can announce`)
}

func TestBadRequests(t *testing.T) {
	ts := startServer(t, Samples(), func(s *Server) { s.MaxRequest = 128 })
	tests := []struct {
		name, req string
		code      Code
		msg       string
	}{
		{"unknown command", "GET / HTTP/1.0\r\n", CodeUnknownCommand, `unknown command "GET"; expected ENVOIE followed by a file name`},
		{"lower case", "envoie:blason.png\r\n", CodeUnknownCommand, `unknown command "envoie"; expected ENVOIE followed by a file name`},
		{"no separator", "ENVOIEblason.png\n", CodeUnknownCommand, `unknown command "ENVOIEblason.png"; expected ENVOIE followed by a file name`},
		{"no name", "ENVOIE\r\n", CodeBadName, "empty file name"},
		{"binary command", "\xff\xfe\x00\x01\n", CodeUnknownCommand, "unknown command; expected ENVOIE followed by a file name"},
		{"too long", "ENVOIE " + strings.Repeat("a", 200) + "\n", CodeBadRequest, "request line longer than 128 bytes"},
		{"bad offset", "REPRENDS -1 blason.png\n", CodeBadOffset, `offset "-1" is not a number between 0 and 4294967294`},
		{"offset too far", "REPRENDS 494 blason.png\n", CodeBadOffset, `offset 494 is past the end of "blason.png" (493 bytes)`},
		{"list a file", "LISTE blason.png\n", CodeNotRegular, `"blason.png" is not a folder`},
		{"list outside", "LISTE ../\n", CodeBadName, `name ".." contains a ".." element`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := ts.dial(t)
			if _, err := io.WriteString(conn, tt.req); err != nil {
				t.Fatal(err)
			}
			_, err := ReadHeader(conn)
			remoteErr(t, err, tt.code, tt.msg)
		})
	}
}

func TestConcurrentDownloads(t *testing.T) {
	dir := t.TempDir()
	data := randomBytes(t, 1<<20)
	writeFile(t, dir, "shared.bin", data)
	ts := startServer(t, openDir(t, dir), nil)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			conn := ts.dial(t)
			var got bytes.Buffer
			if err := NewClient(conn).Get(context.Background(), "shared.bin", &got, nil); err != nil {
				errs <- fmt.Errorf("download %d: %w", i, err)
				return
			}
			if !bytes.Equal(got.Bytes(), data) {
				errs <- fmt.Errorf("download %d: content differs", i)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A client that stops reading is dropped after the write timeout.
func TestStalledReaderDropped(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "long.bin"))
	must(t, err)
	must(t, f.Truncate(64<<20))
	must(t, f.Close())
	ts := startServer(t, openDir(t, dir), func(s *Server) { s.WriteTimeout = 200 * time.Millisecond })
	conn := ts.dial(t)
	if _, err := io.WriteString(conn, "ENVOIE long.bin\n"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the stalled transfer to be dropped", waitTimeout, func() bool {
		return strings.Contains(ts.logs.String(), "i/o timeout")
	})
	testutil.Eventually(t, "the connection to end", waitTimeout, func() bool { return ts.active.Load() == 0 })
}

func TestIdleConnectionClosed(t *testing.T) {
	ts := startServer(t, Samples(), func(s *Server) { s.IdleTimeout = 100 * time.Millisecond })
	conn := ts.dial(t)
	if n, err := conn.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read on an idle connection: %d, %v; want EOF", n, err)
	}
	testutil.EventuallyContains(t, ts.logs, "envoie: idle connection closed", waitTimeout)
}

func TestShutdownStopsTransfers(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "long.bin"))
	must(t, err)
	must(t, f.Truncate(256<<20))
	must(t, f.Close())
	ts := startServer(t, openDir(t, dir), nil)
	conn := ts.dial(t)
	if _, err := io.WriteString(conn, "ENVOIE long.bin\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	ts.cancel()
	testutil.Eventually(t, "handlers to return", waitTimeout, func() bool { return ts.active.Load() == 0 })
	// The client sees a short stream, never a complete one.
	if _, err := io.Copy(io.Discard, conn); err == nil && false {
		t.Fatal("unreachable")
	}
}

func TestSamples(t *testing.T) {
	ts := startServer(t, Samples(), nil)
	got, err := ts.client(t).List(context.Background(), "")
	must(t, err)
	if fmt.Sprint(got) != "[{bienvenue.txt 219 false} {blason.png 493 false} {donnees.bin 65536 false}]" {
		t.Fatalf("samples: %v", got)
	}
}

func TestClientRefusesFramingBytes(t *testing.T) {
	ts := startServer(t, Samples(), nil)
	err := ts.client(t).Get(context.Background(), "a\nENVOIE b", io.Discard, nil)
	if err == nil || err.Error() != `name "a\nENVOIE b" contains a line end or NUL byte and cannot be sent` {
		t.Fatalf("got %v", err)
	}
}

func TestClientShortStream(t *testing.T) {
	// A server that promises 10 bytes and sends 3.
	ln := testutil.Listen(t)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = bufio.NewReader(c).ReadString('\n')
		_, _ = c.Write(append(AppendHeader(nil, 10), "abc"...))
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	must(t, err)
	defer conn.Close()
	var got bytes.Buffer
	err = NewClient(conn).Get(context.Background(), "x", &got, nil)
	if !errors.Is(err, io.ErrUnexpectedEOF) || err.Error() != "receive x: connection ended after 3 of 10 bytes: unexpected EOF" {
		t.Fatalf("got %v", err)
	}
}

func TestClientCancel(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "long.bin"))
	must(t, err)
	must(t, f.Truncate(1<<30))
	must(t, f.Close())
	ts := startServer(t, openDir(t, dir), nil)
	ctx, cancel := context.WithCancel(context.Background())
	err = ts.client(t).Get(ctx, "long.bin", io.Discard, func(n, _ int64) {
		if n > 1<<20 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestRefusalSurvivesPipelining: requests sent after a refused one must not
// turn the close into a reset that destroys the error response, with or
// without a half-close.
func TestRefusalSurvivesPipelining(t *testing.T) {
	for _, mode := range []connMode{modeTLS, modeWrapped, modePlain} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			ts := startServerMode(t, Samples(), nil, mode)
			var conn net.Conn
			if mode == modePlain {
				conn = ts.dialPlain(t)
			} else {
				conn = ts.dial(t)
			}
			reqs := "ENVOIE absent\n" + strings.Repeat("ENVOIE blason.png\n", 2000)
			go func() { _, _ = io.WriteString(conn, reqs) }()
			_, err := ReadHeader(conn)
			remoteErr(t, err, CodeNotFound, `no such file "absent"`)
		})
	}
}

// TestPlainSendfile: over plain TCP the file goes through sendfile(2), in
// chunks; the bytes must be the same, from any offset.
func TestPlainSendfile(t *testing.T) {
	dir := t.TempDir()
	data := randomBytes(t, 2*directChunk+12345)
	writeFile(t, dir, "big.bin", data)
	writeFile(t, dir, "empty", nil)
	ts := startServerMode(t, openDir(t, dir), nil, modePlain)
	c := ts.client(t)
	for _, tt := range []struct {
		name string
		off  int64
		want []byte
	}{
		{"big.bin", 0, data},
		{"big.bin", directChunk + 1, data[directChunk+1:]},
		{"big.bin", int64(len(data)), nil},
		{"empty", 0, nil},
	} {
		var got bytes.Buffer
		if err := c.GetFrom(context.Background(), tt.name, tt.off, &got, nil); err != nil {
			t.Fatalf("%s from %d: %v", tt.name, tt.off, err)
		}
		if !bytes.Equal(got.Bytes(), tt.want) {
			t.Fatalf("%s from %d: got %d bytes, want %d", tt.name, tt.off, got.Len(), len(tt.want))
		}
	}
}

// TestDotfiles: names with a leading dot in any element are refused as
// missing and left out of listings, unless the folder allows them.
func TestDotfiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, ".env", []byte("SECRET=1"))
	writeFile(t, dir, ".git/config", []byte("[core]"))
	writeFile(t, dir, "pub/.hidden", []byte("h"))
	writeFile(t, dir, "pub/a.txt", []byte("a"))
	ctx := context.Background()
	names := []string{".env", ".git/config", "pub/.hidden"}

	hidden := startServer(t, openDir(t, dir), nil)
	for _, name := range names {
		err := hidden.client(t).Get(ctx, name, io.Discard, nil)
		remoteErr(t, err, CodeNotFound, fmt.Sprintf("no such file %q", name))
	}
	c := hidden.client(t)
	for dir, want := range map[string]string{
		"":    "[{pub/ -1 true}]",
		"pub": "[{a.txt 1 false}]",
	} {
		got, err := c.List(ctx, dir)
		must(t, err)
		if fmt.Sprint(got) != want {
			t.Errorf("list %q: %v, want %v", dir, got, want)
		}
	}
	_, err := hidden.client(t).List(ctx, ".git")
	remoteErr(t, err, CodeNotFound, `no such file ".git"`)

	d, err := OpenDir(dir, WithDotfiles(true))
	must(t, err)
	t.Cleanup(func() { d.Close() })
	shown := startServer(t, d, nil)
	for _, name := range names {
		var got bytes.Buffer
		if err := shown.client(t).Get(ctx, name, &got, nil); err != nil || got.Len() == 0 {
			t.Errorf("%s with dotfiles allowed: %q, %v", name, got.String(), err)
		}
	}
}
