package secure

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

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
		testutil.Flood(t, ts.addr, k.n, workers, func(c net.Conn) {
			if k.send != "" {
				io.WriteString(c, k.send)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, c) // until the server closes
		})
	}
	elapsed := time.Since(start)
	got := logs.String()
	testutil.CheckLogBounded(t, got, elapsed, 2<<10,
		`msg="client sent plain text to a TLS port; closing"`,
		`msg="client sent nothing before the handshake timeout; closing"`,
		`msg="tls handshake failed"`)
	t.Logf("%d connections in %v: %d bytes of log", plain+silent+broken, elapsed, len(got))
}
