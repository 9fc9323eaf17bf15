package secure

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/ratelog"
	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

// TestConnectionFloodLogBounded opens thousands of connections that each
// make the listener write a line (plain text to the TLS port, silence until
// the handshake timeout, a broken ClientHello): the log grows by a few
// lines per interval, each kind once with the count of the others, not one
// line per connection.
func TestConnectionFloodLogBounded(t *testing.T) {
	const (
		plain   = 3000
		silent  = 200
		broken  = 300
		workers = 16
	)
	raiseFileLimit(t, 2*workers*16+512)
	root := testpki.NewRoot(t, testpki.CAOptions{})
	leaf := root.Leaf(t, testpki.LeafOptions{})
	log, logs := testutil.Logger(t, slog.LevelInfo)
	ts := startServer(t, ServerConfig{
		GetCertificate:     staticCert(leaf.TLS()),
		HandshakeTimeout:   200 * time.Millisecond,
		MaxConns:           1000,
		MaxConnsPerAddress: 1000,
		Logger:             log,
	}, echoHandler)

	kinds := []struct {
		n    int
		send string
	}{
		{plain, "x\n"},
		{silent, ""},
		{broken, "\x16\x03\x01\x00\x05hello"},
	}
	start := time.Now()
	for _, k := range kinds {
		jobs := make(chan struct{})
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range jobs {
					c, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
					if err != nil {
						t.Error(err)
						return
					}
					if k.send != "" {
						io.WriteString(c, k.send)
					}
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					io.Copy(io.Discard, c) // until the server closes
					c.Close()
				}
			})
		}
		for range k.n {
			jobs <- struct{}{}
		}
		close(jobs)
		wg.Wait()
	}
	elapsed := time.Since(start)
	got := logs.String()
	intervals := 1 + int(elapsed/ratelog.DefaultEvery)
	if most := 2 << 10 * intervals; len(got) > most {
		t.Fatalf("%d bytes of log for %d connections in %v, want at most %d:\n%.3000s", len(got), plain+silent+broken, elapsed, most, got)
	}
	for _, msg := range []string{
		`msg="client sent plain text to a TLS port; closing"`,
		`msg="client sent nothing before the handshake timeout; closing"`,
		`msg="tls handshake failed"`,
	} {
		if n := strings.Count(got, msg); n < 1 || n > intervals {
			t.Errorf("%d lines %s in %v, want 1 to %d", n, msg, elapsed, intervals)
		}
	}
	t.Logf("%d connections in %v: %d bytes of log", plain+silent+broken, elapsed, len(got))
}
