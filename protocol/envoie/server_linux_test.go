//go:build linux

package envoie

// Tests that need Linux: FIFOs, device nodes and Unix sockets in the served
// folder, and /proc to count descriptors.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/passerelle/passerelle/internal/testutil"
)

func TestHostileNames(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	writeFile(t, outside, "secret.txt", []byte("secret"))
	root := filepath.Join(dir, "root")
	writeFile(t, root, "ok.txt", []byte("ok"))
	writeFile(t, root, "sub/inner.txt", []byte("inner"))
	must(t, os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(root, "abs-link")))
	must(t, os.Symlink("../../"+filepath.Base(outside)+"/secret.txt", filepath.Join(root, "rel-link")))
	must(t, os.Symlink(outside, filepath.Join(root, "dir-link")))
	must(t, os.Symlink("/etc/passwd", filepath.Join(root, "sub", "passwd")))
	must(t, os.Symlink("loop", filepath.Join(root, "loop")))
	must(t, os.Symlink("ok.txt", filepath.Join(root, "inside-link"))) // allowed
	must(t, os.Symlink("missing", filepath.Join(root, "dangling")))
	writeFile(t, root, ".env", []byte("SECRET=1"))
	writeFile(t, root, ".git/config", []byte("[core]"))
	writeFile(t, root, "sub/.hidden", []byte("hidden"))
	must(t, syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644))
	ul, err := net.Listen("unix", filepath.Join(root, "sock"))
	must(t, err)
	defer ul.Close()
	haveDevice := syscall.Mknod(filepath.Join(root, "null"), syscall.S_IFCHR|0o644, 1<<8|3) == nil
	long := strings.Repeat("a", MaxNameElement+1)

	tests := []struct {
		name string
		code Code
		msg  string
	}{
		{"", CodeBadName, "empty file name"},
		{"..", CodeBadName, `name ".." contains a ".." element`},
		{"../etc/passwd", CodeBadName, `name "../etc/passwd" contains a ".." element`},
		{"sub/../../x", CodeBadName, `name "sub/../../x" contains a ".." element`},
		{"sub/..", CodeBadName, `name "sub/.." contains a ".." element`},
		{".", CodeBadName, `name "." contains a "." element`},
		{"./ok.txt", CodeBadName, `name "./ok.txt" contains a "." element`},
		{"/etc/passwd", CodeBadName, `name "/etc/passwd" is absolute; names are relative to the served folder`},
		{"//etc/passwd", CodeBadName, `name "//etc/passwd" is absolute; names are relative to the served folder`},
		{"sub//inner.txt", CodeBadName, `name "sub//inner.txt" has an empty path element`},
		{"sub/", CodeBadName, `name "sub/" has an empty path element`},
		{"..\\..\\windows", CodeBadName, `name "..\\..\\windows" contains a backslash; use / between folders`},
		{"ok.txt\x00.png", CodeBadName, `name "ok.txt\x00.png" contains a NUL byte`},
		{"\x00", CodeBadName, `name "\x00" contains a NUL byte`},
		{"ok\x1b[2J.txt", CodeBadName, `name "ok\x1b[2J.txt" contains a control character`},
		{"tab\there", CodeBadName, `name "tab\there" contains a control character`},
		{"del\x7f", CodeBadName, `name "del\x7f" contains a control character`},
		{"c1\u0085", CodeBadName, `name "c1\u0085" contains a control character`},
		{"bad\xffutf8", CodeBadName, `name "bad\xffutf8" is not valid UTF-8`},
		{"\xc0\xaf", CodeBadName, `name "\xc0\xaf" is not valid UTF-8`},
		{long, CodeBadName, fmt.Sprintf("name %s has an element longer than 255 bytes", quoteName(long))},
		{strings.Repeat("a/", MaxName/2+1), CodeBadName, "name of 1026 bytes is longer than 1024"},
		{"absent.txt", CodeNotFound, `no such file "absent.txt"`},
		{"OK.TXT", CodeNotFound, `no such file "OK.TXT"`},
		{"ok.txt/more", CodeNotFound, `no such file "ok.txt/more"`},
		{"sub/absent", CodeNotFound, `no such file "sub/absent"`},
		{"%2e%2e/etc/passwd", CodeNotFound, `no such file "%2e%2e/etc/passwd"`},
		{"...", CodeNotFound, `no such file "..."`},
		{"dangling", CodeNotFound, `no such file "dangling"`},
		// Names that exist but are not served are answered exactly as a
		// missing name: a stranger cannot map what lies beside the files.
		{"loop", CodeNotFound, `no such file "loop"`},
		{"abs-link", CodeNotFound, `no such file "abs-link"`},
		{"rel-link", CodeNotFound, `no such file "rel-link"`},
		{"dir-link/secret.txt", CodeNotFound, `no such file "dir-link/secret.txt"`},
		{"sub/passwd", CodeNotFound, `no such file "sub/passwd"`},
		{"fifo", CodeNotFound, `no such file "fifo"`},
		{"sock", CodeNotFound, `no such file "sock"`},
		{"null", CodeNotFound, `no such file "null"`},
		{".env", CodeNotFound, `no such file ".env"`},
		{".git/config", CodeNotFound, `no such file ".git/config"`},
		{"sub/.hidden", CodeNotFound, `no such file "sub/.hidden"`},
		// A folder is listed by LISTE: saying what it is tells nothing new.
		{"sub", CodeNotRegular, `"sub" is a directory, not a file`},
	}
	ts := startServer(t, openDir(t, root), nil)
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.name), func(t *testing.T) {
			if tt.name == "null" && !haveDevice {
				t.Skip("creating a device node needs privileges this run lacks")
			}
			// Raw requests, since the client refuses NUL bytes itself.
			conn := ts.dial(t)
			if _, err := io.WriteString(conn, "ENVOIE "+tt.name+"\r\n"); err != nil {
				t.Fatal(err)
			}
			_, err := ReadHeader(conn)
			remoteErr(t, err, tt.code, tt.msg)
			// The server closed the connection after the refusal.
			if n, err := conn.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
				t.Fatalf("after a refusal: read %d, %v; want EOF", n, err)
			}
		})
	}
	// What the client was not told is in the log (once per kind of
	// refusal and interval).
	for _, line := range []string{
		`name=abs-link code=outside_root message="\"abs-link\" leads outside the served folder"`,
		`name=fifo code=not_regular message="\"fifo\" is a FIFO, not a file" error=<nil> answered=not_found`,
	} {
		if !strings.Contains(ts.logs.String(), line) {
			t.Errorf("log lacks %s:\n%s", line, ts.logs.String())
		}
	}
	// The symbolic link that stays inside is served.
	var got bytes.Buffer
	if err := ts.client(t).Get(context.Background(), "inside-link", &got, nil); err != nil || got.String() != "ok" {
		t.Fatalf("inside-link: %q, %v", got.String(), err)
	}
}

func TestClientDisconnectMidway(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "long.bin"))
	must(t, err)
	must(t, f.Truncate(256<<20))
	must(t, f.Close())
	for _, mode := range []connMode{modeTLS, modePlain} {
		t.Run(mode.String(), func(t *testing.T) {
			ts := startServerMode(t, openDir(t, dir), nil, mode)
			before, goroutines := testutil.OpenFDs(t), runtime.NumGoroutine()

			var conn, raw net.Conn
			if mode == modePlain {
				conn = ts.dialPlain(t)
				raw = conn
			} else {
				tc := ts.dial(t)
				conn, raw = tc, tc.NetConn()
			}
			if _, err := io.WriteString(conn, "ENVOIE long.bin\n"); err != nil {
				t.Fatal(err)
			}
			// Take a little of the stream, then hang up without a word.
			if _, err := io.ReadFull(conn, make([]byte, 1<<20)); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, "the transfer to be under way", waitTimeout, func() bool { return ts.active.Load() == 1 })
			raw.Close()

			testutil.Eventually(t, "the server to drop the connection", waitTimeout, func() bool { return ts.active.Load() == 0 })
			testutil.Eventually(t, "descriptors to be released", waitTimeout, func() bool { return testutil.OpenFDs(t) <= before })
			testutil.WaitGoroutines(t, goroutines, waitTimeout)
			if logs := ts.logs.String(); !strings.Contains(logs, "envoie: transfer aborted") || !strings.Contains(logs, "name=long.bin") {
				t.Fatalf("no log line for the aborted transfer:\n%s", logs)
			}
		})
	}
}

func TestResumeDigestList(t *testing.T) {
	dir := t.TempDir()
	data := randomBytes(t, 300<<10)
	writeFile(t, dir, "a.bin", data)
	writeFile(t, dir, "folder/b.txt", []byte("bee"))
	writeFile(t, dir, "folder/deeper/c.txt", []byte("c"))
	must(t, syscall.Mkfifo(filepath.Join(dir, "folder", "fifo"), 0o644))
	ts := startServer(t, openDir(t, dir), nil)
	c := ts.client(t)
	ctx := context.Background()

	for _, off := range []int64{0, 1, 100 << 10, int64(len(data)) - 1, int64(len(data))} {
		var got bytes.Buffer
		var firstN, lastTotal int64 = -1, 0
		err := c.GetFrom(ctx, "a.bin", off, &got, func(n, total int64) {
			if firstN < 0 {
				firstN = n
			}
			lastTotal = total
		})
		if err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		if !bytes.Equal(got.Bytes(), data[off:]) {
			t.Fatalf("offset %d: got %d bytes, want %d", off, got.Len(), len(data)-int(off))
		}
		if firstN != off || lastTotal != int64(len(data)) {
			t.Fatalf("offset %d: progress started at %d of %d", off, firstN, lastTotal)
		}
	}

	sum, err := c.Digest(ctx, "a.bin")
	must(t, err)
	if want := fmt.Sprintf("sha256:%x", sha256Sum(data)); sum != want {
		t.Fatalf("digest %s, want %s", sum, want)
	}

	got, err := c.List(ctx, "")
	must(t, err)
	want := []Entry{{Name: "a.bin", Size: int64(len(data))}, {Name: "folder/", Size: -1, IsDir: true}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("list root: %v, want %v", got, want)
	}
	got, err = c.List(ctx, "folder")
	must(t, err)
	want = []Entry{{Name: "b.txt", Size: 3}, {Name: "deeper/", Size: -1, IsDir: true}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("list folder: %v, want %v", got, want)
	}
	_, err = c.Digest(ctx, "folder")
	remoteErr(t, err, CodeNotRegular, `"folder" is a directory, not a file`)
}
