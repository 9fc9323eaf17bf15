// Command handshake measures how many full TLS 1.3 handshakes per second a
// server completes, and the server CPU each one costs, from outside: N
// concurrent clients dial, handshake (no session resumption), make one
// application round trip so that the server has finished its side, and
// close, in a loop, for a fixed time.
//
//   - --proto chat: the round trip is a passerelle control ping
//     ("<passerelle:ping/>" answered "<passerelle:pong/>"), through the
//     relay;
//   - --proto http: "GET / HTTP/1.1" read until the server closes (nginx
//     with "return 204" and keepalive off).
//
// Server CPU is read from /proc/PID/stat (utime + stime, every thread) of
// each --pid before and after the timed run, and divided by the number of
// handshakes completed. It only dials the address given (loopback in
// bench/handshake/run.sh). See docs/performance.md for the figures.
package main

import (
	"bufio"
	"crypto/tls"
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

	"github.com/passerelle/passerelle/certs"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "handshake:", err)
		os.Exit(1)
	}
}

// options is one measure: where, with what client, for how long.
type options struct {
	addr, kex, label string
	conns            int
	duration, warmup time.Duration
	ids              []int // server processes whose CPU time is measured
	cfg              *tls.Config
	trip             func(*tls.Conn) error
}

func run(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	return measure(o)
}

// parseFlags reads and checks the command line.
func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("handshake", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:10000", "the server's TLS address")
	caFile := fs.String("ca", "", "PEM CA file to trust")
	name := fs.String("name", "localhost", "server name to send and verify")
	proto := fs.String("proto", "chat", "round trip after the handshake: chat or http")
	conns := fs.Int("conns", 64, "concurrent clients")
	duration := fs.Duration("duration", 6*time.Second, "timed run")
	warmup := fs.Duration("warmup", time.Second, "untimed run before it")
	kex := fs.String("kex", "default", "key exchange the client offers: default (X25519MLKEM768 first, as Go) or x25519")
	pids := fs.String("pid", "", "comma-separated server process ids whose CPU time is measured")
	label := fs.String("label", "", "label printed at the start of the result line")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	pool, err := certs.AddCAFile(nil, "--ca", *caFile)
	if err != nil {
		return options{}, err
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: *name, MinVersion: tls.VersionTLS13}
	switch *kex {
	case "default":
	case "x25519":
		cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	default:
		return options{}, fmt.Errorf("--kex %q: want default or x25519", *kex)
	}
	var trip func(c *tls.Conn) error
	switch *proto {
	case "chat":
		trip = chatPing
	case "http":
		trip = httpGet
	default:
		return options{}, fmt.Errorf("--proto %q: want chat or http", *proto)
	}
	var ids []int
	if *pids != "" {
		for _, s := range strings.Split(*pids, ",") {
			id, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return options{}, fmt.Errorf("--pid %q: %w", s, err)
			}
			ids = append(ids, id)
		}
	}
	return options{addr: *addr, kex: *kex, label: *label, conns: *conns, duration: *duration, warmup: *warmup,
		ids: ids, cfg: cfg, trip: trip}, nil
}

// measure runs o.conns clients in a loop of handshakes and round trips,
// and prints the rate, the median latency and the server's CPU time.
func measure(o options) error {
	var (
		timing  atomic.Bool
		stop    atomic.Bool
		done    atomic.Int64
		failed  atomic.Int64
		lastErr atomic.Value
		mu      sync.Mutex
		lat     []time.Duration
	)
	var wg sync.WaitGroup
	for range o.conns {
		wg.Go(func() {
			var mine []time.Duration
			for !stop.Load() {
				t0 := time.Now()
				err := once(o.addr, o.cfg, o.trip)
				if !timing.Load() {
					continue
				}
				if err != nil {
					failed.Add(1)
					lastErr.Store(err.Error())
					continue
				}
				done.Add(1)
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	time.Sleep(o.warmup)
	cpu0, err := cpuTicks(o.ids)
	if err != nil {
		return err
	}
	start := time.Now()
	timing.Store(true)
	time.Sleep(o.duration)
	timing.Store(false)
	elapsed := time.Since(start)
	n := done.Load()
	cpu1, err := cpuTicks(o.ids)
	if err != nil {
		return err
	}
	stop.Store(true)
	wg.Wait()
	if n == 0 {
		return fmt.Errorf("no handshake completed (%d failed; last: %v)", failed.Load(), lastErr.Load())
	}
	slices.Sort(lat)
	p50 := lat[len(lat)/2]
	line := fmt.Sprintf("%s%d conns, kex %s: %.0f handshakes/s, p50 %s", o.label, o.conns, o.kex,
		float64(n)/elapsed.Seconds(), p50.Round(100*time.Microsecond))
	if len(o.ids) > 0 {
		// /proc/PID/stat counts in clock ticks (USER_HZ, 100 on Linux).
		us := float64(cpu1-cpu0) * 1e4 / float64(n)
		line += fmt.Sprintf(", server CPU %.0f µs/handshake (%.2f cores busy)", us, float64(cpu1-cpu0)/100/elapsed.Seconds())
	}
	if f := failed.Load(); f > 0 {
		line += fmt.Sprintf(", %d failed (last: %v)", f, lastErr.Load())
	}
	fmt.Println(line)
	return nil
}

// once makes one connection: handshake, round trip, close.
func once(addr string, cfg *tls.Config, trip func(*tls.Conn) error) error {
	raw, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	return trip(c)
}

func chatPing(c *tls.Conn) error {
	if _, err := io.WriteString(c, "<passerelle:ping/>\x00"); err != nil {
		return err
	}
	line, err := bufio.NewReaderSize(c, 64).ReadString(0)
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if line != "<passerelle:pong/>\x00" {
		return fmt.Errorf("ping answered %q", line)
	}
	return nil
}

func httpGet(c *tls.Conn) error {
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	b, err := io.ReadAll(c)
	if err != nil && len(b) == 0 {
		return fmt.Errorf("get: %w", err)
	}
	if !strings.HasPrefix(string(b), "HTTP/1.1 2") {
		return fmt.Errorf("get answered %q", b[:min(len(b), 40)])
	}
	return nil
}

// cpuTicks sums utime and stime of the processes, in clock ticks.
func cpuTicks(pids []int) (int64, error) {
	var sum int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		// The command name (field 2) may hold spaces: fields are counted
		// after its closing parenthesis.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			return 0, errors.New("unreadable /proc stat line")
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 13 {
			return 0, errors.New("short /proc stat line")
		}
		// After ")": state is field 3; utime and stime are 14 and 15.
		for _, k := range []int{11, 12} {
			v, err := strconv.ParseInt(f[k], 10, 64)
			if err != nil {
				return 0, err
			}
			sum += v
		}
	}
	return sum, nil
}
