package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/protocol/envoie"
	"github.com/passerelle/passerelle/secure"
)

// assetServer runs an ENVOIE server behind secure.Server, with a
// certificate from the local CA of dataDir (created here), as passerelle
// serve does; plain turns TLS off.
func assetServer(t *testing.T, dataDir string, files envoie.Files, plain bool) string {
	t.Helper()
	ca, _, err := certs.LoadOrCreateCA(certs.CADir(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	issued, err := ca.Issue(certs.IssueRequest{Names: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	cert := issued.TLSCertificate()
	ln := testutil.Listen(t)
	es := &envoie.Server{Files: files}
	srv := &secure.Server{
		Config: secure.ServerConfig{Plain: plain, Logger: slog.New(slog.DiscardHandler)},
		Handler: func(ctx context.Context, c *secure.Conn) {
			// The wiring docs/assets.md recommends: the *tls.Conn (or
			// *net.TCPConn when plain) itself.
			es.ServeConn(ctx, c.Conn)
		},
	}
	if !plain {
		srv.Config.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

// runCLI runs passerelle in-process with args.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCmd(context.Background(), strings.NewReader(""), &out, &errOut)
	cmd.SetArgs(args)
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestGetCommand(t *testing.T) {
	dataDir := t.TempDir()
	root := t.TempDir()
	big := make([]byte, 3<<20+7)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "dossier"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "dossier", "vide.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := envoie.OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	addr := assetServer(t, dataDir, dir, false)
	plainAddr := assetServer(t, dataDir, dir, true)
	out := t.TempDir()

	t.Run("download through the local CA", func(t *testing.T) {
		dst := filepath.Join(out, "copy.bin")
		if _, stderr, err := runCLI(t, "--data-dir", dataDir, "get", addr, "big.bin", "-o", dst, "--verify"); err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		assertFile(t, dst, big)
		if _, err := os.Stat(dst + ".part"); !os.IsNotExist(err) {
			t.Fatalf("the .part file is left behind: %v", err)
		}
	})
	t.Run("into a folder, empty file, plain", func(t *testing.T) {
		if _, stderr, err := runCLI(t, "--data-dir", dataDir, "get", plainAddr, "dossier/vide.txt", "-o", out, "--plain"); err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		assertFile(t, filepath.Join(out, "vide.txt"), nil)
	})
	t.Run("to standard output", func(t *testing.T) {
		stdout, stderr, err := runCLI(t, "--data-dir", dataDir, "get", addr, "big.bin", "-o", "-")
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		if stdout != string(big) || stderr != "" {
			t.Fatalf("stdout %d bytes (want %d), stderr %q", len(stdout), len(big), stderr)
		}
	})
	t.Run("to a device", func(t *testing.T) {
		if _, stderr, err := runCLI(t, "--data-dir", dataDir, "get", addr, "big.bin", "-o", os.DevNull); err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		if st, err := os.Stat(os.DevNull); err != nil || st.Mode().IsRegular() {
			t.Fatalf("%s was replaced: %v", os.DevNull, err)
		}
	})
	t.Run("resume", func(t *testing.T) {
		dst := filepath.Join(out, "resumed.bin")
		// What an interrupted download leaves: a prefix in FILE.part.
		if err := os.WriteFile(dst+".part", big[:1<<20], 0o644); err != nil {
			t.Fatal(err)
		}
		if _, stderr, err := runCLI(t, "--data-dir", dataDir, "get", addr, "big.bin", "-o", dst, "--resume", "--verify"); err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		assertFile(t, dst, big)
	})
	t.Run("resume catches a changed file", func(t *testing.T) {
		dst := filepath.Join(out, "stale.bin")
		stale := bytes.Repeat([]byte{'z'}, 1000)
		if err := os.WriteFile(dst+".part", stale, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := runCLI(t, "--data-dir", dataDir, "get", addr, "big.bin", "-o", dst, "--resume", "--verify")
		if err == nil || !strings.Contains(err.Error(), "verify big.bin: the saved data has sha256:") ||
			!strings.HasSuffix(err.Error(), "(did it change during the download?); the download was discarded") {
			t.Fatalf("got %v", err)
		}
		for _, p := range []string{dst, dst + ".part"} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Fatalf("a download that failed verification left %s: %v", p, err)
			}
		}
	})
	t.Run("list", func(t *testing.T) {
		stdout, stderr, err := runCLI(t, "--data-dir", dataDir, "get", addr, "--list")
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		if want := "3145735\tbig.bin\n-\tdossier/\n"; stdout != want {
			t.Fatalf("got %q, want %q", stdout, want)
		}
	})
}

func TestGetErrors(t *testing.T) {
	dataDir := t.TempDir()
	addr := assetServer(t, dataDir, envoie.Samples(), false)
	out := t.TempDir()
	otherCA := filepath.Join(t.TempDir(), "data")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"--data-dir", dataDir, "get", addr, "absent.png", "-o", filepath.Join(out, "a")},
			`get absent.png: server refused: not_found: no such file "absent.png"`},
		{"hostile name", []string{"--data-dir", dataDir, "get", addr, "../../etc/passwd", "-o", filepath.Join(out, "b")},
			`get ../../etc/passwd: server refused: bad_name: name "../../etc/passwd" contains a ".." element`},
		{"directory", []string{"--data-dir", dataDir, "get", addr, "."},
			`cannot make a file name out of ".": give one with -o FILE`},
		{"bad address", []string{"--data-dir", dataDir, "get", "localhost", "x"},
			`address "localhost": want HOST:PORT`},
		{"one argument", []string{"--data-dir", dataDir, "get", addr},
			"get needs the server's address and a file name, as HOST:PORT NAME (got 1 argument(s))"},
		{"untrusted server", []string{"--data-dir", otherCA, "get", addr, "blason.png", "-o", filepath.Join(out, "c")},
			"connect to " + addr + ": certificate status untrustedSigners: "},
		{"plain against TLS", []string{"--data-dir", dataDir, "get", addr, "blason.png", "--plain", "-o", filepath.Join(out, "d")},
			"get blason.png: " + addr + ` does not seem to serve ENVOIE (passerelle's asset listener is port 10001 by default): it answered "passerelle: this port speaks TLS; connect with a TLS client (SecureSocket, openssl s_client)"`},
		{"missing CA file", []string{"--data-dir", dataDir, "get", addr, "blason.png", "--ca", filepath.Join(out, "none.pem")},
			"--ca: open " + filepath.Join(out, "none.pem") + ": no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCLI(t, tt.args...)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("got %v\nwant %s", err, tt.want)
			}
		})
	}
	// No refused download leaves a file, partial or not: what the TLS
	// listener told a plain client is not the file.
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("files left behind: %v", ents)
	}
}

// TestGetWrongPort: get pointed at a port of another service ends within
// --timeout and says the port does not seem to serve ENVOIE: the chat
// relay, which waits in silence for a NUL-terminated message, and the echo
// service, which greets in text.
func TestGetWrongPort(t *testing.T) {
	dataDir := t.TempDir()
	s := startServe(t, dataDir, "--echo-address", "127.0.0.1:0")
	out := t.TempDir()
	chat, echo := s.addrs["chat"][0], s.addrs["echo"][0]
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"chat port", []string{"get", chat, "blason.png", "--timeout", "1s", "-o", filepath.Join(out, "a")},
			"get blason.png: no answer within 1s (--timeout): " + chat + " does not seem to serve ENVOIE (passerelle's asset listener is port 10001 by default)"},
		{"chat port, list", []string{"get", chat, "--list", "--timeout", "1s"},
			`list "": no answer within 1s (--timeout): ` + chat + " does not seem to serve ENVOIE (passerelle's asset listener is port 10001 by default)"},
		// "Conn" reads as a length of 1.1 GB, then the echo stops: the
		// timeout ends the wait, and the text gives it away.
		{"echo port", []string{"get", echo, "blason.png", "--timeout", "1s", "-o", filepath.Join(out, "b")},
			"get blason.png: " + echo + ` does not seem to serve ENVOIE (passerelle's asset listener is port 10001 by default): it answered "Connected.Echo -- ENVOIE blason.png"`},
		{"zero timeout", []string{"get", chat, "blason.png", "--timeout", "0s"}, "--timeout 0s: must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCLI(t, append([]string{"--data-dir", dataDir}, tt.args...)...)
			if err == nil || err.Error() != tt.want || exitCode(err) != 1 {
				t.Fatalf("got %v (exit %d)\nwant %s", err, exitCode(err), tt.want)
			}
		})
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("files left behind: %v", ents)
	}
}

func assertFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, want %d (content differs)", path, len(got), len(want))
	}
}

// flakyFiles serves one file whose first read stops after cut bytes, as a
// server going down mid-transfer would; later opens are whole.
type flakyFiles struct {
	envoie.Files
	cut    int64
	opened atomic.Int32
}

func (f *flakyFiles) Open(name string) (fs.File, error) {
	file, err := f.Files.Open(name)
	if err != nil || f.opened.Add(1) > 1 {
		return file, err
	}
	return &cutFile{File: file, left: f.cut}, nil
}

type cutFile struct {
	fs.File
	left int64
}

func (c *cutFile) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("disk went away")
	}
	n, err := c.File.Read(p[:min(int64(len(p)), c.left)])
	c.left -= int64(n)
	return n, err
}

func TestGetInterruptedThenResumed(t *testing.T) {
	dataDir := t.TempDir()
	root := t.TempDir()
	data := make([]byte, 2<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "movie.flv"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := envoie.OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	addr := assetServer(t, dataDir, &flakyFiles{Files: dir, cut: 1 << 20}, false)
	dst := filepath.Join(t.TempDir(), "movie.flv")

	_, _, err = runCLI(t, "--data-dir", dataDir, "get", addr, "movie.flv", "-o", dst)
	if err == nil || !strings.HasPrefix(err.Error(), "get movie.flv: receive movie.flv: connection ended after 1048576 of 2097152 bytes: ") ||
		!strings.HasSuffix(err.Error(), "; the 1048576 bytes received are kept in "+dst+".part: run again with --resume to continue") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("an interrupted download looks complete: %v", err)
	}
	if _, stderr, err := runCLI(t, "--data-dir", dataDir, "get", addr, "movie.flv", "-o", dst, "--resume", "--verify"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	assertFile(t, dst, data)
}

// TestGetRefusesExistingFile checks that get, like cert issue, never
// replaces a file without --force (or --resume): the refusal comes before
// any connection, and nothing is written.
func TestGetRefusesExistingFile(t *testing.T) {
	dataDir := t.TempDir()
	addr := assetServer(t, dataDir, envoie.Samples(), false)
	down := testutil.ClosedAddr(t).String() // a refusal must not even connect
	sample, err := fs.ReadFile(envoie.Samples(), "bienvenue.txt")
	if err != nil {
		t.Fatal(err)
	}
	old := []byte("my own notes, not to be lost\n")
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) // what is there before
		args  func(dir string) []string
		want  string // the error, or "" for a download of sample into dir/bienvenue.txt
	}{
		{"-o an existing file", writeOld(old), func(dir string) []string {
			return []string{"get", down, "bienvenue.txt", "-o", filepath.Join(dir, "bienvenue.txt")}
		}, "{dir}/bienvenue.txt already exists: use --force to replace it, or -o for another file"},
		{"-o a folder holding the name", writeOld(old), func(dir string) []string {
			return []string{"get", down, "bienvenue.txt", "-o", dir}
		}, "{dir}/bienvenue.txt already exists: use --force to replace it, or -o for another file"},
		{"a dangling link", func(t *testing.T, dir string) {
			if err := os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, "bienvenue.txt")); err != nil {
				t.Fatal(err)
			}
		}, func(dir string) []string {
			return []string{"get", down, "bienvenue.txt", "-o", filepath.Join(dir, "bienvenue.txt")}
		}, "{dir}/bienvenue.txt already exists: use --force to replace it, or -o for another file"},
		{"--force replaces", writeOld(old), func(dir string) []string {
			return []string{"get", addr, "bienvenue.txt", "-o", filepath.Join(dir, "bienvenue.txt"), "--force"}
		}, ""},
		{"--resume finishes into it", writeOld(old), func(dir string) []string {
			return []string{"get", addr, "bienvenue.txt", "-o", filepath.Join(dir, "bienvenue.txt"), "--resume"}
		}, ""},
		{"a new file", func(*testing.T, string) {}, func(dir string) []string {
			return []string{"get", addr, "bienvenue.txt", "-o", filepath.Join(dir, "bienvenue.txt")}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			before := listDir(t, dir)
			_, _, err := runCLI(t, append([]string{"--data-dir", dataDir}, tt.args(dir)...)...)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				assertFile(t, filepath.Join(dir, "bienvenue.txt"), sample)
				return
			}
			if want := strings.ReplaceAll(tt.want, "{dir}", dir); err == nil || err.Error() != want {
				t.Fatalf("got %v\nwant %s", err, want)
			}
			if after := listDir(t, dir); !slices.Equal(after, before) {
				t.Fatalf("the refusal changed the folder: %v, then %v", before, after)
			}
		})
	}
}

func writeOld(data []byte) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		if err := os.WriteFile(filepath.Join(dir, "bienvenue.txt"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// listDir describes a folder's entries with their sizes and link targets.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		target, _ := os.Readlink(p)
		data, _ := os.ReadFile(p)
		out = append(out, fmt.Sprintf("%s %v %d %q %q", e.Name(), st.Mode(), st.Size(), target, data))
	}
	return out
}

// hostileAssets answers every ENVOIE request, over plain TCP, the way a
// hostile server would: a listing whose names hold escape sequences, and a
// refusal whose text does.
func hostileAssets(t *testing.T) string {
	t.Helper()
	ln := testutil.Listen(t)
	wait := testutil.Serve(ln, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(waitTimeout))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		if strings.HasPrefix(line, envoie.CmdList) {
			body := "12\t\x1b]2;owned\x07.png\n-\tdir\x1b[2J\u009b\u202e/\n"
			c.Write(append(envoie.AppendHeader(nil, int64(len(body))), body...))
			return
		}
		c.Write(envoie.AppendError(nil, "not_found\x1b[31m", "\x1b[2J\x1b]2;owned\x07gone\xff"))
	})
	t.Cleanup(func() { ln.Close(); wait() })
	return ln.Addr().String()
}

// TestGetEscapesHostileServer checks that what a server says reaches the
// terminal escaped, in a listing and in the error of a refused download.
func TestGetEscapesHostileServer(t *testing.T) {
	addr := hostileAssets(t)
	dataDir := t.TempDir()
	stdout, _, err := runCLI(t, "--data-dir", dataDir, "get", addr, "--list", "--plain")
	if err != nil {
		t.Fatal(err)
	}
	if want := "12\t\\x1b]2;owned\\x07.png\n-\tdir\\x1b[2J\\u009b\\u202e/\n"; stdout != want {
		t.Fatalf("listing %q, want %q", stdout, want)
	}
	dst := filepath.Join(t.TempDir(), "x")
	_, _, err = runCLI(t, "--data-dir", dataDir, "get", addr, "x", "-o", dst, "--plain")
	if want := `get x: server refused: not_found\x1b[31m: \x1b[2J\x1b]2;owned\x07gone\xff`; err == nil || err.Error() != want {
		t.Fatalf("got %q\nwant %q", err, want)
	}
	var re *envoie.RemoteError
	if !errors.As(err, &re) || re.Message != "\x1b[2J\x1b]2;owned\x07gone\xff" {
		t.Fatalf("the escaped error hides the *envoie.RemoteError: %#v", err)
	}
}
