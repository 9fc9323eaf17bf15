package envoie

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
)

func sha256Hex(data []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(data)) }

// TestDigestCache: a second digest of an unchanged file is not hashed
// again, on the same connection or another; a file that changed in any way
// the identity sees is.
func TestDigestCache(t *testing.T) {
	old := randomBytes(t, 200<<10)
	tests := []struct {
		name     string
		linux    bool                                   // the change is only visible through Linux's inode or change time
		change   func(t *testing.T, path string) []byte // returns the new content
		wantRuns int64
	}{
		{"unchanged", false, func(*testing.T, string) []byte { return old }, 1},
		{"rewritten", false, func(t *testing.T, path string) []byte {
			data := randomBytes(t, 100<<10)
			must(t, os.WriteFile(path, data, 0o644))
			must(t, os.Chtimes(path, time.Time{}, time.Now().Add(time.Hour)))
			return data
		}, 2},
		{"same size, modification time put back", true, func(t *testing.T, path string) []byte {
			st, err := os.Stat(path)
			must(t, err)
			data := randomBytes(t, len(old))
			must(t, os.WriteFile(path, data, 0o644))
			must(t, os.Chtimes(path, st.ModTime(), st.ModTime()))
			return data
		}, 2},
		{"replaced by rename, same size and modification time", true, func(t *testing.T, path string) []byte {
			st, err := os.Stat(path)
			must(t, err)
			data := randomBytes(t, len(old))
			tmp := path + ".new"
			must(t, os.WriteFile(tmp, data, 0o644))
			must(t, os.Chtimes(tmp, st.ModTime(), st.ModTime()))
			must(t, os.Rename(tmp, path))
			return data
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.linux && runtime.GOOS != "linux" {
				t.Skip("the inode and change time are part of a file's identity on Linux only")
			}
			dir := t.TempDir()
			path := writeFile(t, dir, "a.bin", old)
			ts := startServer(t, openDir(t, dir), nil)
			ctx := context.Background()
			c := ts.client(t)
			for i := range 2 { // the second from the cache
				sum, err := c.Digest(ctx, "a.bin")
				must(t, err)
				if sum != sha256Hex(old) {
					t.Fatalf("digest %d: %s, want %s", i, sum, sha256Hex(old))
				}
			}
			if n := ts.srv.dig.runs.Load(); n != 1 {
				t.Fatalf("%d hashing runs for two digests of an unchanged file, want 1", n)
			}
			want := tt.change(t, path)
			sum, err := ts.client(t).Digest(ctx, "a.bin")
			must(t, err)
			if sum != sha256Hex(want) {
				t.Fatalf("digest after the change: %s, want %s", sum, sha256Hex(want))
			}
			if n := ts.srv.dig.runs.Load(); n != tt.wantRuns {
				t.Fatalf("%d hashing runs, want %d", n, tt.wantRuns)
			}
		})
	}
}

// bigSparse makes a file of the largest size ENVOIE allows, taking no disk
// space: hashing it whole takes seconds.
func bigSparse(t *testing.T) (dir string, size int64) {
	t.Helper()
	dir = t.TempDir()
	f, err := os.Create(filepath.Join(dir, "huge.bin"))
	must(t, err)
	must(t, f.Truncate(MaxFileSize))
	must(t, f.Close())
	return dir, MaxFileSize
}

// TestDigestStopsWhenClientLeaves: hashing stops soon after the client
// hangs up, instead of reading the whole 4 GiB for nobody.
func TestDigestStopsWhenClientLeaves(t *testing.T) {
	dir, size := bigSparse(t)
	for _, mode := range []connMode{modeTLS, modePlain} {
		t.Run(mode.String(), func(t *testing.T) {
			started, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			ts := startServerMode(t, openDir(t, dir), func(s *Server) {
				s.dig.onChunk = func(string) {
					once.Do(func() { close(started); <-release })
				}
			}, mode)
			var conn net.Conn
			if mode == modePlain {
				conn = ts.dialPlain(t)
			} else {
				conn = ts.dial(t)
			}
			if _, err := io.WriteString(conn, "EMPREINTE huge.bin\n"); err != nil {
				t.Fatal(err)
			}
			<-started
			conn.Close()
			close(release)
			testutil.Eventually(t, "the digest to stop", waitTimeout, func() bool { return ts.active.Load() == 0 })
			if n := ts.srv.dig.hashed.Load(); n >= size {
				t.Fatalf("hashed all %d bytes for a client that had left", n)
			}
			if ts.srv.dig.hashing.Load() != 0 {
				t.Fatal("a digest is still running")
			}
			logs := ts.logs.String()
			if !strings.Contains(logs, "envoie: transfer aborted") || !strings.Contains(logs, "the client left") {
				t.Fatalf("no log line for the abandoned digest:\n%s", logs)
			}
		})
	}
}

// TestDigestConcurrencyBound: with MaxDigests 2, four digests of four files
// run two at a time; the others wait, say so, and are answered later.
func TestDigestConcurrencyBound(t *testing.T) {
	dir := t.TempDir()
	want := map[string]string{}
	for i := range 4 {
		name := fmt.Sprintf("f%d.bin", i)
		data := randomBytes(t, 300<<10)
		writeFile(t, dir, name, data)
		want[name] = sha256Hex(data)
	}
	release := make(chan struct{})
	var most atomic.Int64
	ts := startServer(t, openDir(t, dir), func(s *Server) {
		s.MaxDigests = 2
		s.dig.onChunk = func(string) {
			n := s.dig.hashing.Load()
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			<-release
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, len(want))
	for name, sum := range want {
		c := ts.client(t)
		wg.Go(func() {
			got, err := c.Digest(context.Background(), name)
			if err == nil && got != sum {
				err = fmt.Errorf("%s: digest %s, want %s", name, got, sum)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	d := &ts.srv.dig
	testutil.Eventually(t, "two digests to run and two to wait", waitTimeout, func() bool {
		return d.hashing.Load() == 2 && d.waiting.Load() == 2
	})
	if n := d.runs.Load(); n != 2 {
		t.Fatalf("%d digests started, want 2", n)
	}
	testutil.EventuallyContains(t, ts.logs, `msg="envoie: digest waits for a free slot"`, waitTimeout)
	testutil.EventuallyContains(t, ts.logs, "max_digests=2", waitTimeout)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := d.runs.Load(); n != 4 {
		t.Fatalf("%d digests computed, want 4", n)
	}
	if m := most.Load(); m > 2 {
		t.Fatalf("%d digests ran at once, want at most 2", m)
	}
}

// TestDigestBusy: a digest that finds no free slot within DigestWait is
// refused as busy, and the log says so.
func TestDigestBusy(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.bin", randomBytes(t, 100<<10))
	writeFile(t, dir, "b.bin", randomBytes(t, 100<<10))
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	ts := startServer(t, openDir(t, dir), func(s *Server) {
		s.MaxDigests = 1
		s.DigestWait = 100 * time.Millisecond
		s.dig.onChunk = func(string) {
			once.Do(func() { close(started) })
			<-release
		}
	})
	first := make(chan error, 1)
	c := ts.client(t)
	go func() { _, err := c.Digest(context.Background(), "a.bin"); first <- err }()
	<-started
	_, err := ts.client(t).Digest(context.Background(), "b.bin")
	remoteErr(t, err, CodeBusy, "the server is computing as many digests as it allows (1); try again later")
	close(release)
	must(t, <-first)
	logs := ts.logs.String()
	for _, want := range []string{`msg="envoie: digest waits for a free slot" remote_addr=`, "name=b.bin max_digests=1", "code=busy"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}
