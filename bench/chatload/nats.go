package main

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// natsFanout is fanout's open loop against a NATS server, for the same
// figures in the same run: one publisher offers rate messages per second
// (bursts of 16 on schedule) of size bytes on one subject, to receivers
// subscribers each on its own TLS connection. A subscriber the server cuts
// off as slow, and messages a subscriber's client drops, count as lost;
// latency is from each message's due time, as for the relay.
func natsFanout(url string, cfg *tls.Config, receivers, messages, size, rate int) error {
	const subject = "chatload.fanout"
	connect := func() (*nats.Conn, error) {
		return nats.Connect(url, nats.Secure(cfg), nats.NoReconnect(), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	}
	// The publisher sets start once the subscribers are ready; their
	// callbacks read it from other goroutines.
	var start atomic.Pointer[time.Time]
	now := time.Now()
	start.Store(&now)
	since := func() time.Duration { return time.Since(*start.Load()) }
	seen := make([]atomic.Int64, receivers)
	lat := make([][]time.Duration, receivers)
	var lastRead atomic.Int64
	subs := make([]*nats.Subscription, receivers)
	for i := range receivers {
		nc, err := connect()
		if err != nil {
			return fmt.Errorf("subscriber %d: %w", i, err)
		}
		defer nc.Close()
		subs[i], err = nc.Subscribe(subject, func(m *nats.Msg) {
			if len(m.Data) != size {
				return
			}
			sent := int64(binary.BigEndian.Uint64(hexDecode(m.Data[8:24])))
			if i < 10 {
				lat[i] = append(lat[i], since()-time.Duration(sent))
			}
			seen[i].Add(1)
			lastRead.Store(int64(since()))
		})
		if err != nil {
			return err
		}
		if err := nc.Flush(); err != nil {
			return err
		}
	}
	pub, err := connect()
	if err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	defer pub.Close()
	time.Sleep(time.Second)

	sending := time.Now()
	start.Store(&sending)
	msg := bytes.Repeat([]byte("x"), size)
	for n := 0; n < messages; n++ {
		if n%16 == 0 {
			if d := time.Duration(n) * time.Second / time.Duration(rate); d > since() {
				time.Sleep(d - since())
			}
		}
		copy(msg, fmt.Sprintf("%08x", n))
		copy(msg[8:], hexEncode(uint64(dueTime(n, rate))))
		if err := pub.Publish(subject, msg); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	if err := pub.Flush(); err != nil {
		return err
	}
	sendTime := since()
	// Wait until every subscriber has everything, or nothing has come for
	// two seconds.
	for {
		total := int64(0)
		for i := range seen {
			total += seen[i].Load()
		}
		if total == int64(receivers*messages) || since()-time.Duration(lastRead.Load()) > 2*time.Second {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	delivered, cut := int64(0), 0
	for i := range seen {
		delivered += seen[i].Load()
		if !subs[i].IsValid() || seen[i].Load() < int64(messages) {
			cut++
		}
	}
	p50, p99 := quantiles(lat)
	elapsed := time.Duration(lastRead.Load())
	fmt.Printf("nats-rate: 1 publisher, %d subscribers, %d messages of %d bytes offered at %d/s (sent at %.0f/s): %d subscribers missing messages, %d messages lost; %.0f delivered msgs/s; latency from due time p50 %s, p99 %s\n",
		receivers, messages, size, rate, float64(messages)/sendTime.Seconds(), cut, int64(receivers*messages)-delivered,
		float64(delivered)/elapsed.Seconds(), p50, p99)
	return nil
}
