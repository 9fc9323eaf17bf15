package envoie

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/passerelle/passerelle/internal/testutil"
)

var benchSize = flag.Int64("envoie.size", 1<<30, "file size in bytes for BenchmarkGet1GiB (for a quicker run: -envoie.size=67108864)")

// sparseFile makes a file of size bytes that takes no disk space: reading it
// costs the page cache, like a hot asset, and no disk.
func sparseFile(b *testing.B, size int64) string {
	b.Helper()
	dir := b.TempDir()
	f, err := os.Create(filepath.Join(dir, "big.bin"))
	must(b, err)
	must(b, f.Truncate(size))
	must(b, f.Close())
	return dir
}

// BenchmarkGet1GiB downloads a 1 GiB file over TLS on loopback, server and
// client in this process (so the two cores are shared by both ends, as with
// nginx and curl in bench/envoie/run.sh).
func BenchmarkGet1GiB(b *testing.B) {
	size := *benchSize
	ts := startServer(b, openDir(b, sparseFile(b, size)), nil)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		conn := ts.dial(b)
		if err := NewClient(conn).Get(context.Background(), "big.bin", io.Discard, nil); err != nil {
			b.Fatal(err)
		}
		conn.Close()
	}
}

// BenchmarkGetPlain is BenchmarkGet1GiB with TLS off: the server hands the
// file to the kernel (sendfile).
func BenchmarkGetPlain(b *testing.B) {
	size := *benchSize
	ts := startServerMode(b, openDir(b, sparseFile(b, size)), nil, modePlain)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		conn := ts.dialPlain(b)
		if err := NewClient(conn).Get(context.Background(), "big.bin", io.Discard, nil); err != nil {
			b.Fatal(err)
		}
		conn.Close()
	}
}

// BenchmarkBufferSize compares copy buffer sizes on a 64 MiB file.
func BenchmarkBufferSize(b *testing.B) {
	const size = 64 << 20
	dir := sparseFile(b, size)
	for _, buf := range []int{16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10} {
		b.Run(fmt.Sprintf("%dKiB", buf>>10), func(b *testing.B) {
			ts := startServer(b, openDir(b, dir), func(s *Server) { s.BufferSize = buf })
			b.SetBytes(size)
			for b.Loop() {
				conn := ts.dial(b)
				if err := NewClient(conn).Get(context.Background(), "big.bin", io.Discard, nil); err != nil {
					b.Fatal(err)
				}
				conn.Close()
			}
		})
	}
}

// BenchmarkMemoryPerTransfer holds 100 transfers of a 1 GiB file open at
// once, each client having read 256 KiB and then stopped (so every server
// goroutine is mid-file, blocked on a full socket), and reports the live
// heap and stack they cost. Both ends are in this process, so the figure
// (B/transfer) counts the client's TLS connection too: an upper bound for
// the server.
func BenchmarkMemoryPerTransfer(b *testing.B) {
	const n = 100
	ts := startServer(b, openDir(b, sparseFile(b, 1<<30)), nil)
	live := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse + m.StackInuse
	}
	var perTransfer float64
	for b.Loop() {
		before := live()
		conns := make([]io.ReadWriteCloser, n)
		var wg sync.WaitGroup
		for i := range conns {
			c := ts.dial(b)
			conns[i] = c
			wg.Go(func() {
				if _, err := io.WriteString(c, "ENVOIE big.bin\n"); err != nil {
					b.Error(err)
					return
				}
				if _, err := io.ReadFull(c, make([]byte, 256<<10)); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		testutil.Eventually(b, "every transfer to be in flight", waitTimeout, func() bool { return ts.active.Load() == n })
		after := live()
		perTransfer = float64(after-min(before, after)) / n
		for _, c := range conns {
			c.Close()
		}
		testutil.Eventually(b, "every transfer to end", waitTimeout, func() bool { return ts.active.Load() == 0 })
	}
	b.ReportMetric(perTransfer, "B/transfer")
}
