package web

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/protocol/policy"
	"github.com/passerelle/passerelle/protocol/xmlsocket"
	"github.com/passerelle/passerelle/secure"
)

// chatListener is a chat listener as passerelle serve builds one: a
// secure.Server whose handler sends browsers to the WebSocket side and raw
// clients to the hub, both feeding one hub.
type chatListener struct {
	addr string
	pool *x509.CertPool
	ca   string // the root's PEM file
	hub  *hub.Hub
}

func startChatListener(b testing.TB, cfg hub.Config, maxConns int) *chatListener {
	return startChatListenerWith(b, cfg, maxConns, &Chat{})
}

// startChatListenerWith is startChatListener with chat's PingInterval and
// Logger.
func startChatListenerWith(b testing.TB, cfg hub.Config, maxConns int, chat *Chat) *chatListener {
	b.Helper()
	root := testpki.NewRoot(b, testpki.CAOptions{})
	cert := root.Leaf(b, testpki.LeafOptions{}).TLS()
	h := hub.New(cfg)
	chat.Hub, chat.Page, chat.Origins, chat.MaxMessage = h, NewChatPage(), mustOrigins(b), hub.DefaultMaxMessage
	httpd := NewConnServer(chat, 0, nil)
	door := &Door{Gate: &policy.Gate{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &secure.Server{
		Config: secure.ServerConfig{
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil },
			NextProtos:     []string{ALPN},
			MaxConns:       maxConns,
			// One address plays every client.
			MaxConnsPerAddress: maxConns,
		},
		Handler: func(ctx context.Context, c *secure.Conn) {
			door.Serve(ctx, c, c.TLS().NegotiatedProtocol, httpd, func(ctx context.Context, c net.Conn) (func(), func()) {
				a := h.AdmitConn(ctx, c)
				return a.Serve, a.Leave
			})
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, ln) }()
	b.Cleanup(func() {
		h.Close()
		cancel()
		<-done
		httpd.Close()
	})
	return &chatListener{addr: ln.Addr().String(), pool: root.Pool(), ca: root.WriteCert(b, b.TempDir(), "ca.pem"), hub: h}
}

func mustOrigins(b testing.TB) *Origins {
	o, err := NewOrigins(nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	return o
}

// benchReceiver reads messages, whatever its transport.
type benchReceiver interface {
	next() ([]byte, error)
}

type rawReceiver struct{ rd *xmlsocket.Reader }

func (r rawReceiver) next() ([]byte, error) { return r.rd.ReadFrame() }

// wsReceiver reads the server's frames itself, as cheaply as the raw
// receivers read theirs, so that the figures compare the server's work: a
// server's frames are unmasked, and passerelle's are whole binary frames.
type wsReceiver struct {
	rd  *bufio.Reader
	buf []byte
}

func (r *wsReceiver) next() ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r.rd, h[:]); err != nil {
		return nil, err
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(r.rd, ext[:]); err != nil {
			return nil, err
		}
		n = int(ext[0])<<8 | int(ext[1])
	case 127:
		return nil, fmt.Errorf("frame over 64 KiB")
	}
	if h[0] != 0x82 {
		return nil, fmt.Errorf("frame header %#x, want a final binary frame", h[0])
	}
	if cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	_, err := io.ReadFull(r.rd, r.buf[:n])
	return r.buf[:n], err
}

func (l *chatListener) dialRaw(b *testing.B) net.Conn {
	c, err := tls.Dial("tcp", l.addr, &tls.Config{RootCAs: l.pool, ServerName: "localhost"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

func (l *chatListener) dialWS(b testing.TB) *websocket.Conn {
	b.Helper()
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: l.pool, ServerName: "localhost"}}
	ws, _, err := d.Dial("wss://"+l.addr+"/", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ws.Close() })
	return ws
}

// joinRaw has a raw client say something, so that the server takes it for
// a chat client without waiting to see whether it is a browser, and waits
// for the answer.
func joinRaw(b testing.TB, c net.Conn) {
	b.Helper()
	io.WriteString(c, "<passerelle:ping/>\x00")
	if _, err := bufio.NewReader(c).ReadString(0); err != nil {
		b.Fatal(err)
	}
}

// joinWS is joinRaw for a WebSocket client.
func joinWS(b testing.TB, ws *websocket.Conn) {
	b.Helper()
	ws.WriteMessage(websocket.BinaryMessage, []byte("<passerelle:ping/>\x00"))
	if _, _, err := ws.ReadMessage(); err != nil {
		b.Fatal(err)
	}
}

// benchMessage is a chat message of size bytes, its NUL included.
func benchMessage(size int) []byte {
	msg := bytes.Repeat([]byte("x"), size)
	msg[size-1] = 0
	return msg
}

// BenchmarkFanoutWebSocket is the relay's fan-out with browsers among the
// receivers: 1 raw TLS sender, 100 receivers (raw TLS, WebSocket, or half
// of each), 128-byte messages, the sender at most 512 messages ahead of the
// slowest receiver, everything through a chat listener as serve builds it.
// Compare the "websocket" figure with "raw" of the same run:
//
//	go test -run '^$' -bench FanoutWebSocket -benchtime 20000x -count 3 ./web
func BenchmarkFanoutWebSocket(b *testing.B) {
	for _, kind := range []string{"raw", "websocket", "mixed"} {
		b.Run(kind, func(b *testing.B) { benchFanoutWS(b, kind) })
	}
}

func benchFanoutWS(b *testing.B, kind string) {
	const receivers, msgSize, batch, window = 100, 128, 16, 512
	l := startChatListener(b, hub.Config{QueueBytes: 4 << 20}, 1000)
	sender := l.dialRaw(b)
	joinRaw(b, sender)
	recv := make([]benchReceiver, receivers)
	for i := range recv {
		if kind == "websocket" || (kind == "mixed" && i%2 == 1) {
			ws := l.dialWS(b)
			joinWS(b, ws)
			recv[i] = &wsReceiver{rd: bufio.NewReaderSize(ws.UnderlyingConn(), 16<<10)}
		} else {
			c := l.dialRaw(b)
			joinRaw(b, c)
			recv[i] = rawReceiver{xmlsocket.NewReaderSize(c, 1024, 16<<10)}
		}
	}
	got := make([]atomic.Int64, receivers)
	var wg sync.WaitGroup
	for i, r := range recv {
		wg.Go(func() {
			for got[i].Load() < int64(b.N) {
				if _, err := r.next(); err != nil {
					b.Errorf("receiver %d: %v", i, err)
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
	msg := benchMessage(msgSize)
	buf := make([]byte, 0, batch*msgSize)
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; {
		for int64(sent)-minGot() > window {
			time.Sleep(50 * time.Microsecond)
		}
		buf = buf[:0]
		for j := 0; j < batch && sent < b.N; j++ {
			buf = append(buf, msg...)
			sent++
		}
		if _, err := sender.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*receivers)/elapsed.Seconds(), "msgs/s")
}

// Environment of the child process that holds the idle clients.
const (
	envIdleAddr = "PASSERELLE_WEB_BENCH_IDLE_ADDR"
	envIdleCA   = "PASSERELLE_WEB_BENCH_IDLE_CA"
	envIdleN    = "PASSERELLE_WEB_BENCH_IDLE_N"
	envIdleKind = "PASSERELLE_WEB_BENCH_IDLE_KIND"
)

// TestMain turns the test binary into the idle-client process when
// BenchmarkIdleWebSocketMemory re-executes it, so that the clients' own
// memory is not counted.
func TestMain(m *testing.M) {
	if addr := os.Getenv(envIdleAddr); addr != "" {
		if err := holdIdleClients(addr, os.Getenv(envIdleCA), os.Getenv(envIdleN), os.Getenv(envIdleKind)); err != nil {
			fmt.Fprintln(os.Stderr, "idle clients:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func holdIdleClients(addr, caFile, nStr, kind string) error {
	n, err := strconv.Atoi(nStr)
	if err != nil {
		return err
	}
	pool, err := certs.AddCAFile(nil, "CA file", caFile)
	if err != nil {
		return err
	}
	tc := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	var closers []io.Closer
	var mu sync.Mutex
	var next atomic.Int64
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for int(next.Add(1)) <= n {
				var c io.Closer
				if kind == "websocket" {
					d := websocket.Dialer{TLSClientConfig: tc}
					ws, _, err := d.Dial("wss://"+addr+"/", http.Header{})
					if err != nil {
						errs <- err
						return
					}
					c = ws
				} else {
					conn, err := tls.Dial("tcp", addr, tc)
					if err != nil {
						errs <- err
						return
					}
					// A raw client says something, so the server does not
					// wait to see whether it is a browser.
					io.WriteString(conn, "<passerelle:ping/>\x00")
					c = conn
				}
				mu.Lock()
				closers = append(closers, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
	for _, c := range closers {
		c.Close()
	}
	return nil
}

// BenchmarkIdleWebSocketMemory measures what one idle client costs the
// server, raw TLS against WebSocket over TLS, through a chat listener as
// serve builds it: heap in use plus goroutine stacks after GC, with the
// clients held by a child process, divided by their number. Run it once:
//
//	go test -run '^$' -bench IdleWebSocketMemory -benchtime 1x ./web
func BenchmarkIdleWebSocketMemory(b *testing.B) {
	const idle = 10000
	for _, kind := range []string{"raw", "websocket"} {
		b.Run(kind, func(b *testing.B) {
			l := startChatListener(b, hub.Config{}, 2*idle)
			before := serverMemory()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), envIdleAddr+"="+l.addr, envIdleCA+"="+l.ca, envIdleN+"="+strconv.Itoa(idle), envIdleKind+"="+kind)
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
				b.Fatalf("idle clients: %q, %v", line, err)
			}
			// Let every connection reach its idle state (the hub's
			// reader waiting, buffers released).
			time.Sleep(2 * time.Second)
			after := serverMemory()
			stdin.Close()
			cmd.Wait()
			b.ReportMetric(float64(after.total()-before.total())/idle, "B/client")
			b.ReportMetric(float64(after.stack-before.stack)/idle, "stack-B/client")
			b.ReportMetric(float64(after.goroutines-before.goroutines)/idle, "goroutines/client")
		})
	}
}

// serverMemory is the process's heap and stacks in use, after a collection.
type serverMem struct {
	heap, stack uint64
	goroutines  int
}

func (m serverMem) total() uint64 { return m.heap + m.stack }

func serverMemory() serverMem {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return serverMem{heap: m.HeapInuse, stack: m.StackInuse, goroutines: runtime.NumGoroutine()}
}

// BenchmarkSenderWebSocket is one client sending as fast as the relay
// takes it to a room of one raw receiver: the server's read path per
// message, raw TLS against WebSocket, with quiet clients parked (the
// default) and never parked, where a WebSocket sender's reader waits below
// the library at every message boundary or not at all. Compare within one
// run:
//
//	go test -run '^$' -bench SenderWebSocket -benchtime 200000x -count 3 ./web
func BenchmarkSenderWebSocket(b *testing.B) {
	for _, park := range []struct {
		name  string
		after time.Duration
	}{{"parked", 0}, {"never", -1}} {
		for _, kind := range []string{"raw", "websocket"} {
			b.Run(kind+"/"+park.name, func(b *testing.B) { benchSender(b, kind, park.after) })
		}
	}
}

func benchSender(b *testing.B, kind string, parkAfter time.Duration) {
	const msgSize, batch = 128, 16
	l := startChatListener(b, hub.Config{QueueBytes: 4 << 20, ParkAfter: parkAfter}, 10)
	rx := l.dialRaw(b)
	joinRaw(b, rx)
	rd := xmlsocket.NewReaderSize(rx, 1024, 64<<10)
	msg := benchMessage(msgSize)
	var send func() error
	if kind == "websocket" {
		ws := l.dialWS(b)
		joinWS(b, ws)
		// batch frames in one write, as a browser's burst arrives.
		var buf []byte
		for range batch {
			buf = append(buf, clientFrame(websocket.BinaryMessage, true, msg)...)
		}
		w := ws.UnderlyingConn()
		send = func() error { _, err := w.Write(buf); return err }
	} else {
		c := l.dialRaw(b)
		joinRaw(b, c)
		buf := make([]byte, 0, batch*msgSize)
		for range batch {
			buf = append(buf, msg...)
		}
		send = func() error { _, err := c.Write(buf); return err }
	}
	done := make(chan error, 1)
	go func() {
		for n := 0; n < b.N; n++ {
			if _, err := rd.ReadFrame(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += batch {
		if err := send(); err != nil {
			b.Fatal(err)
		}
	}
	// Whatever b.N, the receiver waits for b.N messages: the last batch
	// may send up to batch-1 more.
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
}
