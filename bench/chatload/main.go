// Command chatload measures a running passerelle chat relay from outside,
// through its real TLS listener, as an operator would:
//
//   - idle: opens N clients that stay silent (raw TLS or WebSocket over TLS:
//     --transport) and reports the growth of the server's resident memory
//     (VmRSS of --pid) divided by N;
//   - fanout: one sender and R receivers in one room (raw TLS, WebSocket
//     over TLS, or half each: --transport); reports delivered
//     messages per second and the p50/p99 latency from the sender's write to
//     each receiver's read. With --rate, the sender offers that many
//     messages per second whatever the receivers do (open loop), and the
//     report is the receivers the relay dropped and the delivered rate.
//
// It only dials the address given (loopback in bench/chatload/run.sh) and
// stops by itself. See docs/chat.md for the figures.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/passerelle/passerelle/certs"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "chatload:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("chatload", flag.ContinueOnError)
	mode := fs.String("mode", "idle", "idle, fanout, or nats (fanout's open loop against a NATS server at --addr)")
	addr := fs.String("addr", "127.0.0.1:10000", "the relay's TLS address")
	caFile := fs.String("ca", "", "PEM CA file to trust (passerelle ca path)")
	pid := fs.Int("pid", 0, "idle: the server's process id, to read its VmRSS")
	conns := fs.Int("conns", 10000, "idle: clients to open")
	settle := fs.Duration("settle", 12*time.Second, "idle: wait this long after the last client's handshake before the measure")
	hold := fs.Duration("hold", 0, "idle: keep the clients open this long after the measure (time to take the server's profiles)")
	receivers := fs.Int("receivers", 100, "fanout: receivers")
	transport := fs.String("transport", "raw", "how clients connect: raw (TLS), websocket (wss), or mixed (half each; fanout's receivers only)")
	messages := fs.Int("messages", 20000, "fanout: messages sent")
	size := fs.Int("size", 128, "fanout: message size in bytes, NUL included")
	window := fs.Int("window", 256, "fanout: messages the sender may be ahead of the slowest receiver")
	rate := fs.Int("rate", 0, "fanout: offer this many messages per second, whatever the receivers do (open loop; 0: keep within --window instead)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pool, err := certs.AddCAFile(nil, "--ca", *caFile)
	if err != nil {
		return err
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	switch *mode {
	case "idle":
		if *pid <= 0 {
			return errors.New("idle needs --pid of the server")
		}
		switch *transport {
		case "raw", "websocket":
		default:
			return fmt.Errorf("--transport %q: idle wants raw or websocket", *transport)
		}
		return idle(*addr, cfg, *transport, *pid, *conns, *settle, *hold)
	case "fanout":
		if *size < 25 {
			return errors.New("--size must be at least 25 bytes: a sequence number (8), a time stamp (16) and the NUL")
		}
		switch *transport {
		case "raw", "websocket", "mixed":
		default:
			return fmt.Errorf("--transport %q: want raw, websocket or mixed", *transport)
		}
		return fanout(*addr, cfg, *receivers, *messages, *size, *window, *rate, *transport)
	case "nats":
		if *size < 24 || *rate <= 0 {
			return errors.New("nats needs --size of at least 24 bytes and a --rate")
		}
		return natsFanout("tls://"+*addr, cfg, *receivers, *messages, *size, *rate)
	}
	return fmt.Errorf("--mode %q: want idle, fanout or nats", *mode)
}

// rss reads a process's resident set size in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS line")
}

// ping sends a control ping and waits for the pong: the relay has taken
// the client in.
func ping(c io.Writer, r *bufio.Reader) error {
	if _, err := io.WriteString(c, "<passerelle:ping/>\x00"); err != nil {
		return err
	}
	line, err := r.ReadString(0)
	if err != nil {
		return err
	}
	if line != "<passerelle:pong/>\x00" {
		return fmt.Errorf("ping answered %q", line)
	}
	return nil
}

func idle(addr string, cfg *tls.Config, transport string, pid, n int, settle, hold time.Duration) error {
	time.Sleep(time.Second) // let the server settle after its start
	before, err := rss(pid)
	if err != nil {
		return err
	}
	dial := dialRaw
	if transport == "websocket" {
		dial = dialWS
	}
	clients := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for i := range n {
		x, err := dial(addr, cfg, 64)
		if x.c != nil {
			clients = append(clients, x.c)
		}
		if err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
	}
	// Past the policy wait, chat.park_after and runtime.release_after (a
	// quiet server gives back the heap it does not use): the memory of an
	// idle server, as it stays.
	time.Sleep(settle)
	after, err := rss(pid)
	if err != nil {
		return err
	}
	what := "TLS"
	if transport == "websocket" {
		what = "WebSocket"
	}
	fmt.Printf("idle: %d %s clients; server VmRSS %.1f MiB -> %.1f MiB; %.1f KiB per connection\n",
		n, what, float64(before)/(1<<20), float64(after)/(1<<20), float64(after-before)/float64(n)/1024)
	time.Sleep(hold)
	return nil
}

// rx is one client: c for its deadlines and close, w for what it sends
// (a raw TLS stream, or one WebSocket frame per write), r for what it
// receives as one stream of NUL-terminated messages.
type rx struct {
	c net.Conn
	w io.Writer
	r *bufio.Reader
}

// dialRaw connects a raw TLS client, reading through a buffer of bufSize,
// and pings the relay; the client is returned even with an error, to be
// closed.
func dialRaw(addr string, cfg *tls.Config, bufSize int) (rx, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return rx{}, err
	}
	r := bufio.NewReaderSize(c, bufSize)
	return rx{c, c, r}, ping(c, r)
}

// dialWS is dialRaw for a WebSocket client: one binary frame per write,
// the frames it receives read as one stream.
func dialWS(addr string, cfg *tls.Config, bufSize int) (rx, error) {
	d := websocket.Dialer{TLSClientConfig: cfg}
	ws, _, err := d.Dial("wss://"+addr+"/", nil)
	if err != nil {
		return rx{}, err
	}
	c := ws.UnderlyingConn()
	r := bufio.NewReaderSize(&frameReader{r: bufio.NewReaderSize(c, bufSize)}, bufSize)
	w := wsWriter{ws}
	return rx{c, w, r}, ping(w, r)
}

// fanoutRun is one round of fanout: what it was asked, and what its
// receivers saw.
type fanoutRun struct {
	receivers, messages, size, window, rate int

	start    time.Time
	minSeen  atomic.Int64 // messages received by the slowest receiver
	seen     []atomic.Int64
	lat      [][]time.Duration // latencies of the first ten receivers
	lost     atomic.Int64      // receivers the relay dropped (open loop)
	lastRead atomic.Int64      // ns since start of the last message read
}

func fanout(addr string, cfg *tls.Config, receivers, messages, size, window, rate int, transport string) error {
	sender, rxs, err := joinRoom(addr, cfg, receivers, transport)
	defer func() {
		for _, x := range append(rxs, sender) {
			if x.c != nil {
				x.c.Close()
			}
		}
	}()
	if err != nil {
		return err
	}
	time.Sleep(time.Second) // past the policy wait

	f := &fanoutRun{receivers: receivers, messages: messages, size: size, window: window, rate: rate,
		start: time.Now(), seen: make([]atomic.Int64, receivers), lat: make([][]time.Duration, receivers)}
	var wg sync.WaitGroup
	errc := make(chan error, receivers)
	for i := range rxs {
		wg.Go(func() {
			if err := f.receive(i, rxs[i]); err != nil {
				errc <- err
			}
		})
	}
	go f.watchSlowest()
	if err := f.send(sender.c); err != nil {
		return err
	}
	sendTime := time.Since(f.start)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	f.report(sendTime, time.Since(f.start))
	return nil
}

// joinRoom connects the sender (always raw) and the receivers (following
// --transport, alternating for "mixed") and has them join one new room.
// The clients connected are returned even with an error, to be closed.
func joinRoom(addr string, cfg *tls.Config, receivers int, transport string) (sender rx, rxs []rx, err error) {
	room := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	join := func(x rx) error {
		if _, err := fmt.Fprintf(x.w, "<passerelle:join room=%q/>\x00", room); err != nil {
			return err
		}
		_, err := x.r.ReadString(0)
		return err
	}
	if sender, err = dialRaw(addr, cfg, 64<<10); err != nil {
		return sender, nil, fmt.Errorf("sender: %w", err)
	}
	if err := join(sender); err != nil {
		return sender, nil, err
	}
	rxs = make([]rx, 0, receivers)
	for i := range receivers {
		dial := dialRaw
		if transport == "websocket" || transport == "mixed" && (i+1)%2 == 0 {
			dial = dialWS
		}
		x, err := dial(addr, cfg, 64<<10)
		if x.c != nil {
			rxs = append(rxs, x)
		}
		if err != nil {
			return sender, rxs, fmt.Errorf("receiver %d: %w", i, err)
		}
		if err := join(x); err != nil {
			return sender, rxs, err
		}
	}
	return sender, rxs, nil
}

// receive reads the messages of receiver i, checking each one's size and
// noting its latency.
func (f *fanoutRun) receive(i int, x rx) error {
	x.c.SetReadDeadline(time.Now().Add(5 * time.Minute))
	for n := 0; n < f.messages; n++ {
		msg, err := x.r.ReadSlice(0)
		if err != nil && f.rate > 0 {
			// Open loop: the relay may drop a receiver; count it.
			f.lost.Add(1)
			return nil
		}
		if err != nil {
			return fmt.Errorf("receiver %d after %d messages: %w", i, n, err)
		}
		if len(msg) != f.size {
			return fmt.Errorf("receiver %d: message of %d bytes, want %d", i, len(msg), f.size)
		}
		sent := int64(binary.BigEndian.Uint64(hexDecode(msg[8:24])))
		if i < 10 {
			f.lat[i] = append(f.lat[i], time.Since(f.start)-time.Duration(sent))
		}
		f.seen[i].Add(1)
	}
	f.lastRead.Store(int64(time.Since(f.start)))
	return nil
}

// watchSlowest keeps minSeen, the count of the slowest receiver, until
// every receiver has every message.
func (f *fanoutRun) watchSlowest() {
	for {
		m := int64(f.messages)
		for i := range f.seen {
			m = min(m, f.seen[i].Load())
		}
		f.minSeen.Store(m)
		if m >= int64(f.messages) {
			return
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// send writes the messages, each carrying its sequence number and send
// time (ns): on schedule with --rate, else within --window of the slowest
// receiver.
func (f *fanoutRun) send(c net.Conn) error {
	w := bufio.NewWriterSize(c, 32<<10)
	msg := bytes.Repeat([]byte("x"), f.size)
	msg[f.size-1] = 0
	for n := 0; n < f.messages; n++ {
		if f.rate > 0 && n%16 == 0 {
			// Bursts of 16 on schedule; behind it, as fast as the
			// relay takes them.
			if d := time.Duration(n) * time.Second / time.Duration(f.rate); d > time.Since(f.start) {
				w.Flush()
				time.Sleep(d - time.Since(f.start))
			}
		}
		for f.rate == 0 && int64(n)-f.minSeen.Load() > int64(f.window) {
			w.Flush()
			time.Sleep(50 * time.Microsecond)
		}
		copy(msg, fmt.Sprintf("%08x", n))
		stamp := time.Since(f.start)
		if f.rate > 0 {
			// Open loop: latency counts from when the message was due
			// (its burst's start), so time the sender spent held back
			// by the relay is counted too.
			stamp = dueTime(n, f.rate)
		}
		copy(msg[8:], hexEncode(uint64(stamp)))
		if _, err := w.Write(msg); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		if n%16 == 15 {
			w.Flush()
		}
	}
	w.Flush()
	return nil
}

// report prints the round's result line.
func (f *fanoutRun) report(sendTime, elapsed time.Duration) {
	p50, p99 := quantiles(f.lat)
	if f.rate > 0 {
		delivered := int64(0)
		for i := range f.seen {
			delivered += f.seen[i].Load()
		}
		if t := time.Duration(f.lastRead.Load()); t > 0 {
			elapsed = t
		}
		fmt.Printf("fanout-rate: 1 sender, %d receivers, %d messages of %d bytes offered at %d/s (sent at %.0f/s): %d receivers lost; %.0f delivered msgs/s; latency from due time p50 %s, p99 %s\n",
			f.receivers, f.messages, f.size, f.rate, float64(f.messages)/sendTime.Seconds(), f.lost.Load(), float64(delivered)/elapsed.Seconds(),
			p50, p99)
		return
	}
	fmt.Printf("fanout: 1 sender, %d receivers, %d messages of %d bytes in %s: %.0f delivered msgs/s; latency p50 %s, p99 %s\n",
		f.receivers, f.messages, f.size, elapsed.Round(time.Millisecond), float64(f.messages*f.receivers)/elapsed.Seconds(),
		p50, p99)
}

// quantiles gives the median and the 99th percentile of the latencies
// noted, rounded to 10 µs (0 when none were).
func quantiles(lat [][]time.Duration) (p50, p99 time.Duration) {
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return 0, 0
	}
	slices.Sort(all)
	q := func(p float64) time.Duration { return all[int(p*float64(len(all)-1))].Round(10 * time.Microsecond) }
	return q(0.50), q(0.99)
}

// dueTime is when message n is due in an open loop at rate messages per
// second, sent in bursts of 16: its burst's start.
func dueTime(n, rate int) time.Duration {
	return time.Duration(n-n%16) * time.Second / time.Duration(rate)
}

func hexEncode(v uint64) []byte { return []byte(fmt.Sprintf("%016x", v)) }

func hexDecode(b []byte) []byte {
	v, _ := strconv.ParseUint(string(b), 16, 64)
	var out [8]byte
	binary.BigEndian.PutUint64(out[:], v)
	return out[:]
}

// wsWriter sends each Write as one binary WebSocket frame, as OpenFL's
// XMLSocket sends each message.
type wsWriter struct{ ws *websocket.Conn }

func (w wsWriter) Write(p []byte) (int, error) {
	if err := w.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// frameReader reads the payloads of a server's WebSocket frames as one
// stream: the relay sends each message as one unmasked binary frame, so the
// stream is the messages with their NULs, as a raw client reads them.
type frameReader struct {
	r    *bufio.Reader
	left int // payload bytes of the current frame not read yet
}

func (f *frameReader) Read(p []byte) (int, error) {
	for f.left == 0 {
		var h [2]byte
		if _, err := io.ReadFull(f.r, h[:]); err != nil {
			return 0, err
		}
		n := int(h[1] & 0x7f)
		switch n {
		case 126:
			var ext [2]byte
			if _, err := io.ReadFull(f.r, ext[:]); err != nil {
				return 0, err
			}
			n = int(binary.BigEndian.Uint16(ext[:]))
		case 127:
			var ext [8]byte
			if _, err := io.ReadFull(f.r, ext[:]); err != nil {
				return 0, err
			}
			n = int(binary.BigEndian.Uint64(ext[:]))
		}
		if h[0]&0x0f >= 8 { // a control frame (ping, close): skip it
			if _, err := f.r.Discard(n); err != nil {
				return 0, err
			}
			if h[0]&0x0f == 8 {
				return 0, io.EOF
			}
			continue
		}
		f.left = n
	}
	if len(p) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.left -= n
	return n, err
}
