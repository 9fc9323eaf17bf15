package cluster

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/internal/testutil"
)

// BenchmarkFanOut is the figure: 1 sender on node A, 100 receivers
// spread over the nodes, 128-byte messages; delivered/s with no receiver
// lost and the p99 latency, on one node and on three nodes in one run, and
// the heap each cluster node adds. Run it with
//
//	go test -run '^$' -bench FanOut -benchtime 20000x ./cluster
func BenchmarkFanOut(b *testing.B) {
	const receivers = 100
	b.Run("single", func(b *testing.B) {
		n := startPlain(b)
		fanOut(b, []string{n}, receivers, nil)
	})
	b.Run("three-nodes", func(b *testing.B) {
		before := heapInUse()
		nodes := startCluster(b, 3, func(_ int, cfg *Config) { cfg.TTL = DefaultTTL })
		added := float64(heapInUse()-before) / 3
		addrs := []string{nodes[0].addr, nodes[1].addr, nodes[2].addr}
		fanOut(b, addrs, receivers, func() {
			waitInterest(b, servers(nodes), nodes[0].node.subject(hub.DefaultRoom), 3)
		})
		b.ReportMetric(added/(1<<20), "MiB-heap/node")
		for i, n := range nodes {
			st := n.node.Stats()
			arrival := uint64(0)
			for _, d := range st.DroppedOnArrival {
				arrival += d
			}
			if st.SlowDropped+st.BufferDropped+st.Rejected+arrival > 0 {
				b.Errorf("node %d dropped: %+v", i, st)
			}
		}
	})
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// startPlain is a single hub with no cluster link.
func startPlain(b *testing.B) string {
	h := hub.New(hub.Config{})
	ln := testutil.Listen(b)
	wait := testutil.Serve(ln, func(c net.Conn) { h.ServeConn(b.Context(), c) })
	b.Cleanup(func() { ln.Close(); h.Close(); wait() })
	return ln.Addr().String()
}

// fanOut connects receivers spread over addrs and a sender on addrs[0],
// sends b.N messages of 128 bytes (NUL included) carrying their send time,
// keeping the slowest receiver within a window so none is dropped as slow, and
// reports delivered/s and the p99 latency.
func fanOut(b *testing.B, addrs []string, receivers int, ready func()) {
	const size, window = 128, 1024 // the window stays within the hub's default queue budget (256 KiB)
	var wg sync.WaitGroup
	counts := make([]atomic.Int64, receivers)
	var lost atomic.Int32
	lat := make([][]time.Duration, receivers)
	conns := make([]net.Conn, receivers)
	for i := range receivers {
		c, err := net.Dial("tcp", addrs[i%len(addrs)])
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = c
	}
	sender, err := net.Dial("tcp", addrs[0])
	if err != nil {
		b.Fatal(err)
	}
	defer sender.Close()
	readers := make([]*bufio.Reader, receivers)
	for i, c := range conns {
		// A pong means the receiver is in the room.
		readers[i] = bufio.NewReaderSize(c, 64<<10)
		c.Write([]byte("<passerelle:ping/>\x00"))
		c.SetReadDeadline(time.Now().Add(waitTimeout))
		if m, err := readers[i].ReadString(0); err != nil || m != "<passerelle:pong/>\x00" {
			b.Fatalf("receiver %d: ping: %q, %v", i, m, err)
		}
	}
	if ready != nil {
		ready()
	}
	// Every receiver is in the room: a probe reaches them all.
	sender.Write([]byte("probe\x00"))
	for i, c := range conns {
		r := readers[i]
		c.SetReadDeadline(time.Now().Add(waitTimeout))
		if _, err := r.ReadString(0); err != nil {
			b.Fatalf("receiver %d: probe: %v", i, err)
		}
		c.SetReadDeadline(time.Time{})
		wg.Go(func() {
			defer c.Close()
			for {
				m, err := r.ReadSlice(0)
				if err != nil {
					if counts[i].Load() < int64(b.N) {
						if lost.Add(1) == 1 {
							b.Logf("receiver %d after %d messages: %v", i, counts[i].Load(), err)
						}
					}
					return
				}
				n := counts[i].Add(1)
				if n%16 == 0 && len(m) > 20 {
					if t, err := strconv.ParseInt(string(m[3:22]), 10, 64); err == nil {
						lat[i] = append(lat[i], time.Since(time.Unix(0, t)))
					}
				}
				if n == int64(b.N) {
					return
				}
			}
		})
	}
	slowest := func() int64 {
		m := int64(b.N)
		for i := range counts {
			m = min(m, counts[i].Load())
		}
		return m
	}
	pad := bytes.Repeat([]byte("x"), size)
	b.SetBytes(size)
	b.ResetTimer()
	start := time.Now()
	batch := make([]byte, 0, 64*size)
	for sent := 0; sent < b.N; {
		for int64(sent)-slowest() > window && lost.Load() == 0 {
			time.Sleep(50 * time.Microsecond)
		}
		batch = batch[:0]
		for k := 0; k < 64 && sent < b.N; k++ {
			n := len(batch)
			batch = fmt.Appendf(batch, "<m %019d/>", time.Now().UnixNano())
			batch = append(batch, pad[:size-1-(len(batch)-n)]...)
			batch = append(batch, 0)
			sent++
		}
		if _, err := sender.Write(batch); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := lost.Load(); n > 0 {
		b.Fatalf("%d receivers lost", n)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
	b.ReportMetric(float64(b.N)*float64(receivers)/elapsed.Seconds(), "delivered/s")
}
