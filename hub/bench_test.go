package hub

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/protocol/xmlsocket"
	"github.com/passerelle/passerelle/secure"
)

// BenchmarkFanout measures the relay's fan-out: 1 sender, 100 receivers,
// 128-byte messages (NUL included), everything on loopback in this process.
// Each message carries its send time; receivers 0-9 record the latency of
// every message. The sender keeps at most fanoutWindow messages ahead of the
// slowest receiver, so the figures are those of a room that keeps up (no
// receiver is dropped), at the hub's saturation rate.
//
//	go test -run '^$' -bench 'Fanout' -benchtime 50000x ./hub
func BenchmarkFanout(b *testing.B) {
	for _, tr := range []network{tlsNetwork(), plainNetwork()} {
		b.Run(tr.name, func(b *testing.B) { benchFanout(b, tr, 0) })
	}
}

// BenchmarkFanoutLatency is BenchmarkFanout at a steady 2,000 messages per
// second from the sender (200,000 deliveries per second), far below
// saturation: its p50/p99 are the relay's latency rather than the time a
// message waits behind the saturated window.
//
//	go test -run '^$' -bench 'FanoutLatency' -benchtime 10000x ./hub
func BenchmarkFanoutLatency(b *testing.B) {
	benchFanout(b, tlsNetwork(), 2000)
}

const (
	fanoutReceivers = 100
	fanoutRecorders = 10
	fanoutMsgSize   = 128
	fanoutBatch     = 16  // messages per sender write
	fanoutWindow    = 512 // messages in flight at most
)

// benchFanout sends b.N messages, as fast as the window allows when rate is
// 0, else rate messages per second in bursts of fanoutBatch.
func benchFanout(b *testing.B, tr network, rate int) {
	s := startHub(b, tr, Config{QueueBytes: 4 << 20})
	sender := s.connect(1)
	type receiver struct {
		got  atomic.Int64
		lat  []time.Duration
		conn net.Conn
	}
	recv := make([]*receiver, fanoutReceivers)
	for i := range recv {
		recv[i] = &receiver{conn: s.connect(i + 2).conn}
		if i < fanoutRecorders {
			recv[i].lat = make([]time.Duration, 0, b.N)
		}
	}
	base := time.Now()
	var wg sync.WaitGroup
	for _, r := range recv {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rd := xmlsocket.NewReaderSize(r.conn, 1024, 16<<10)
			for r.got.Load() < int64(b.N) {
				f, err := rd.ReadFrame()
				if err != nil {
					b.Errorf("receiver: %v", err)
					return
				}
				if r.lat != nil {
					end := strings.IndexByte(string(f[2:]), ';') + 2
					sent, _ := strconv.ParseInt(string(f[2:end]), 10, 64)
					r.lat = append(r.lat, time.Since(base)-time.Duration(sent))
				}
				r.got.Add(1)
			}
		}()
	}
	minGot := func() int64 {
		m := int64(b.N)
		for _, r := range recv {
			m = min(m, r.got.Load())
		}
		return m
	}
	pad := strings.Repeat("x", fanoutMsgSize)
	buf := make([]byte, 0, fanoutBatch*fanoutMsgSize)
	b.SetBytes(fanoutMsgSize * fanoutReceivers)
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; {
		if rate > 0 {
			due := start.Add(time.Duration(sent) * time.Second / time.Duration(rate))
			time.Sleep(time.Until(due))
		}
		for int64(sent)-minGot() > fanoutWindow {
			time.Sleep(50 * time.Microsecond)
		}
		buf = buf[:0]
		for j := 0; j < fanoutBatch && sent < b.N; j++ {
			head := "t=" + strconv.FormatInt(int64(time.Since(base)), 10) + ";"
			buf = append(buf, head...)
			buf = append(buf, pad[:fanoutMsgSize-1-len(head)]...)
			buf = append(buf, 0)
			sent++
		}
		if _, err := sender.conn.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	var lat []time.Duration
	for _, r := range recv[:fanoutRecorders] {
		lat = append(lat, r.lat...)
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.ReportMetric(float64(b.N*fanoutReceivers)/elapsed.Seconds(), "msgs/s")
	if n := s.closed(ReasonSlowConsumer); n > 0 {
		b.Fatalf("%d receivers dropped as slow consumers", n)
	}
}

// Environment of the child process that holds the idle clients.
const (
	envIdleAddr = "PASSERELLE_HUB_BENCH_IDLE_ADDR"
	envIdleCA   = "PASSERELLE_HUB_BENCH_IDLE_CA"
	envIdleN    = "PASSERELLE_HUB_BENCH_IDLE_N"
)

// TestMain turns the test binary into the idle-client process when
// BenchmarkIdleConnMemory re-executes it: 10,000 clients and 10,000 server
// connections do not fit under one process's limit of 20,000 descriptors.
func TestMain(m *testing.M) {
	if addr := os.Getenv(envIdleAddr); addr != "" {
		if err := holdIdleClients(addr, os.Getenv(envIdleCA), os.Getenv(envIdleN)); err != nil {
			fmt.Fprintln(os.Stderr, "idle clients:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// holdIdleClients opens n TLS connections to addr, prints "ready", and keeps
// them open until its standard input closes.
func holdIdleClients(addr, caFile, nStr string) error {
	n, err := strconv.Atoi(nStr)
	if err != nil {
		return fmt.Errorf("bad count %q: %w", nStr, err)
	}
	pool, err := certs.AddCAFile(nil, "CA file", caFile)
	if err != nil {
		return err
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	conns := make([]net.Conn, n)
	var next atomic.Int64
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := tls.Dial("tcp", addr, cfg)
				if err != nil {
					errs <- err
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes it
	for _, c := range conns {
		c.Close()
	}
	return nil
}

// BenchmarkIdleConnMemory measures what one idle TLS client costs the hub:
// heap in use plus goroutine stacks, after GC, with idleClients clients
// connected from a child process, divided by the number of clients. It
// includes the server side of crypto/tls, the hub's client, its reader and
// writer goroutines, and the listener's handler goroutine. Run it once:
//
//	go test -run '^$' -bench IdleConnMemory -benchtime 1x ./hub
//
// Two listeners: "tls" runs the crypto/tls handshake in the goroutine that
// then serves the client in the hub (the hub's own cost); "secure" accepts
// through secure.Server as passerelle serve does (handshake deadline, client
// verdict, a fresh handler goroutine).
func BenchmarkIdleConnMemory(b *testing.B) {
	const idleClients = 10000
	root := testpki.NewRoot(b, testpki.CAOptions{})
	leaf := root.Leaf(b, testpki.LeafOptions{})
	caFile := root.WriteCert(b, b.TempDir(), "ca.pem")
	cert := leaf.TLS()
	listeners := []struct {
		name  string
		parks bool // clients are parked (secure.Conn can be detached)
		serve func(ctx context.Context, ln net.Listener, h *Hub) (wait func())
	}{
		{"tls", false, func(ctx context.Context, ln net.Listener, h *Hub) func() {
			tl := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
			return testutil.Serve(tl, func(c net.Conn) { serveHandshaken(ctx, h, c) })
		}},
		{"secure", true, func(ctx context.Context, ln net.Listener, h *Hub) func() {
			srv := &secure.Server{
				Config: secure.ServerConfig{
					GetCertificate:     func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil },
					MaxConns:           2 * idleClients,
					MaxConnsPerAddress: 2 * idleClients, // every client is 127.0.0.1
				},
				Handler: func(ctx context.Context, c *secure.Conn) { h.ServeConn(ctx, c) },
			}
			done := make(chan struct{})
			go func() { defer close(done); srv.Serve(ctx, ln) }()
			return func() { <-done }
		}},
	}
	for _, l := range listeners {
		b.Run(l.name, func(b *testing.B) { benchIdle(b, idleClients, caFile, l.parks, l.serve) })
	}
}

func benchIdle(b *testing.B, idleClients int, caFile string, parks bool, serve func(context.Context, net.Listener, *Hub) func()) {
	for range b.N {
		ln := testutil.Listen(b)
		h := New(Config{})
		ctx, cancel := context.WithCancel(context.Background())
		wait := serve(ctx, ln, h)
		before := memNow()

		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envIdleAddr+"="+ln.Addr().String(), envIdleCA+"="+caFile,
			envIdleN+"="+strconv.Itoa(idleClients))
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || line != "ready\n" {
			b.Fatalf("child: %q, %v", line, err)
		}
		testutil.EventuallyReport(b, waitTimeout, func() bool { return clientCount(h) == idleClients }, func() string {
			return fmt.Sprintf("%d clients, want %d", clientCount(h), idleClients)
		})
		if parks {
			// Every client sent nothing for ParkAfter: each waits on its
			// socket, its reader's goroutine gone.
			testutil.EventuallyReport(b, waitTimeout, func() bool { return h.parked.Load() == int64(idleClients) }, func() string {
				return fmt.Sprintf("%d clients parked, want %d", h.parked.Load(), idleClients)
			})
		}
		after := memNow()

		perConn := float64(after.total()-before.total()) / float64(idleClients)
		b.ReportMetric(perConn, "B/conn")
		b.ReportMetric(float64(after.heap-before.heap)/float64(idleClients), "heap-B/conn")
		b.ReportMetric(float64(after.stack-before.stack)/float64(idleClients), "stack-B/conn")
		b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(idleClients), "goroutines/conn")

		stdin.Close()
		cmd.Wait()
		h.Close()
		cancel()
		ln.Close()
		wait()
	}
}

type memSample struct {
	heap, stack uint64
	goroutines  int
}

func (m memSample) total() uint64 { return m.heap + m.stack }

// memNow returns heap in use and stack in use once collections stop
// reducing them. Each collection halves the stacks that use less than a
// quarter of their size, so the stack a goroutine needed once (the TLS
// handshake) is given back over a few cycles, as it is in a server that runs
// for more than a few seconds.
func memNow() memSample {
	var ms runtime.MemStats
	prev := uint64(0)
	for range 10 {
		runtime.GC()
		debug.FreeOSMemory()
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse+ms.StackInuse == prev {
			break
		}
		prev = ms.HeapInuse + ms.StackInuse
	}
	return memSample{heap: ms.HeapInuse, stack: ms.StackInuse, goroutines: runtime.NumGoroutine()}
}

// BenchmarkFanoutOffered is BenchmarkFanout in open loop, with the flood
// limit off: the sender offers rate messages per second (in bursts of
// fanoutBatch; behind schedule, as fast as the relay takes them) whatever
// the receivers do, b.N messages in all, and the queue budget is the
// default. It reports the receivers the relay dropped (lost, all of which
// read continuously) and the delivered rate (deliveries per second, to the
// last receiver's last message). The rates bracket the 2-core machine's
// saturation, loaded or quiet: find the highest rate at which nothing is
// lost, then read the rows at 1.5 and 2 times it (docs/performance.md).
//
//	go test -run '^$' -bench 'FanoutOffered' -benchtime 100000x ./hub
func BenchmarkFanoutOffered(b *testing.B) {
	for _, rate := range []int{10000, 15000, 20000, 30000, 45000, 60000} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) { benchFanoutOffered(b, tlsNetwork(), rate) })
	}
}

func benchFanoutOffered(b *testing.B, tr network, rate int) {
	s := startHubLevel(b, tr, Config{}, slog.LevelWarn+1)
	sender := s.connect(1)
	recv := make([]net.Conn, fanoutReceivers)
	for i := range recv {
		recv[i] = s.connect(i + 2).conn
	}
	var lost, delivered, last atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range recv {
		wg.Go(func() {
			rd := xmlsocket.NewReaderSize(c, 1024, 16<<10)
			c.SetReadDeadline(time.Now().Add(5 * time.Minute))
			for range b.N {
				if _, err := rd.ReadFrame(); err != nil {
					lost.Add(1)
					return
				}
				delivered.Add(1)
			}
			last.Store(int64(time.Since(start)))
		})
	}
	msg := []byte(strings.Repeat("x", fanoutMsgSize-1) + "\x00")
	burst := slices.Repeat(msg, fanoutBatch)
	b.ResetTimer()
	start = time.Now()
	for sent := 0; sent < b.N; sent += fanoutBatch {
		if d := time.Duration(sent) * time.Second / time.Duration(rate); d > time.Since(start) {
			time.Sleep(d - time.Since(start))
		}
		n := min(fanoutBatch, b.N-sent)
		if _, err := sender.conn.Write(burst[:n*fanoutMsgSize]); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.StopTimer()
	elapsed := time.Duration(last.Load())
	if elapsed == 0 {
		elapsed = time.Since(start)
	}
	b.ReportMetric(float64(lost.Load()), "lost")
	b.ReportMetric(float64(delivered.Load())/elapsed.Seconds(), "delivered-msgs/s")
}
