//go:build unix

package hub

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/passerelle/passerelle/protocol/xmlsocket"
)

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// FanoutThroughput is BenchmarkFanout's saturated fan-out over TLS (1
// sender, fanoutReceivers receivers, fanoutMsgSize-byte messages, at most
// fanoutWindow in flight) with obs as the hub's Observer (nil: none),
// reporting deliveries per second and the CPU time per message. It is exported, in a test file only, for
// the benchmark of the metrics package's observer in hub_test
// (metrics_observer_bench_test.go), which hub's own tests cannot import.
func FanoutThroughput(b *testing.B, obs Observer) {
	s := startHub(b, tlsNetwork(), Config{QueueBytes: 4 << 20, Observer: obs})
	sender := s.connect(1)
	recv := make([]net.Conn, fanoutReceivers)
	for i := range recv {
		recv[i] = s.connect(i + 2).conn
	}
	got := make([]atomic.Int64, fanoutReceivers)
	var wg sync.WaitGroup
	for i, c := range recv {
		wg.Go(func() {
			rd := xmlsocket.NewReaderSize(c, 1024, 16<<10)
			for got[i].Load() < int64(b.N) {
				if _, err := rd.ReadFrame(); err != nil {
					b.Errorf("receiver: %v", err)
					return
				}
				got[i].Add(1)
			}
		})
	}
	minGot := func() int64 {
		m := int64(b.N)
		for i := range got {
			m = min(m, got[i].Load())
		}
		return m
	}
	msg := strings.Repeat("x", fanoutMsgSize-1) + "\x00"
	batch := []byte(strings.Repeat(msg, fanoutBatch))
	b.SetBytes(fanoutMsgSize * fanoutReceivers)
	b.ResetTimer()
	start, cpuStart := time.Now(), cpuTime()
	for sent := 0; sent < b.N; {
		for int64(sent)-minGot() > fanoutWindow {
			time.Sleep(50 * time.Microsecond)
		}
		n := min(fanoutBatch, b.N-sent)
		if _, err := sender.conn.Write(batch[:n*fanoutMsgSize]); err != nil {
			b.Fatal(err)
		}
		sent += n
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpuStart
	b.StopTimer()
	b.ReportMetric(float64(b.N*fanoutReceivers)/elapsed.Seconds(), "msgs/s")
	// The process's CPU time per message sent (hub and clients together)
	// depends far less than msgs/s on what else the machine runs.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/msg")
	if n := s.closed(ReasonSlowConsumer); n > 0 {
		b.Fatalf("%d receivers dropped as slow consumers", n)
	}
}
