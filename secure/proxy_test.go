package secure

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

// addrHandler tells the client the address the server believes it has.
func addrHandler(_ context.Context, c *Conn) {
	io.WriteString(c, "you are "+c.RemoteAddr().String()+"\n")
	io.Copy(io.Discard, c)
}

// proxyHeader is a PROXY protocol header of the given version saying the
// connection comes from src.
func proxyHeader(t *testing.T, version byte, src string, dst net.Addr) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(version, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)), dst)
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tlsOver runs a TLS client on c, which has already sent its PROXY header,
// and returns the first line the server writes.
func tlsOver(t *testing.T, c net.Conn, root *testpki.CA) (string, error) {
	t.Helper()
	tc := tls.Client(c, &tls.Config{ServerName: "localhost", RootCAs: root.Pool()})
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(tc).ReadString('\n')
	return line, err
}

func proxyServer(t *testing.T, balancers string, max, perAddr int) (*testServer, *testpki.CA) {
	t.Helper()
	root := testpki.NewRoot(t, testpki.CAOptions{})
	nets, err := ParseProxyProtocol(strings.Fields(balancers))
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, ServerConfig{
		GetCertificate:     staticCert(root.Leaf(t, testpki.LeafOptions{DNSNames: []string{"localhost"}}).TLS()),
		ProxyProtocol:      nets,
		MaxConns:           max,
		MaxConnsPerAddress: perAddr,
	}, addrHandler)
	return ts, root
}

// TestProxyProtocolGivesClientAddress: a balancer's version 1 or 2 header,
// followed by the client's TLS handshake, makes the client's address the
// connection's.
func TestProxyProtocolGivesClientAddress(t *testing.T) {
	ts, root := proxyServer(t, "127.0.0.0/8", 0, 0)
	for _, tt := range []struct {
		version byte
		src     string
	}{{1, "203.0.113.7:40001"}, {2, "203.0.113.8:40002"}, {2, "[2001:db8::9]:40003"}} {
		c := dialFrom(t, "127.0.0.1", ts.addr)
		c.Write(proxyHeader(t, tt.version, tt.src, c.RemoteAddr()))
		line, err := tlsOver(t, c, root)
		if want := "you are " + tt.src + "\n"; err != nil || line != want {
			t.Errorf("v%d: server said %q, %v; want %q", tt.version, line, err, want)
		}
	}
}

// TestProxyProtocolRefusals: a listed balancer must send a header, and
// nobody else may; each refusal is one log line naming it. A client that
// is not a balancer and sends no header is served as before.
func TestProxyProtocolRefusals(t *testing.T) {
	ts, root := proxyServer(t, "127.0.0.2/32", 0, 0)

	c := dialFrom(t, "127.0.0.2", ts.addr)
	if line, err := tlsOver(t, c, root); err == nil {
		t.Errorf("a balancer without a header was served: %q", line)
	}
	c = dialFrom(t, "127.0.0.1", ts.addr)
	c.Write(proxyHeader(t, 1, "203.0.113.7:1", c.RemoteAddr()))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, _ := io.ReadAll(c); len(got) != 0 {
		t.Errorf("a header from an unlisted address got %q", got)
	}
	c = dialFrom(t, "127.0.0.1", ts.addr)
	if line, err := tlsOver(t, c, root); err != nil || !strings.HasPrefix(line, "you are 127.0.0.1:") {
		t.Errorf("a direct client got %q, %v", line, err)
	}

	testutil.Eventually(t, "refusal lines", 5*time.Second, func() bool {
		return strings.Contains(ts.logs.String(), "not in proxy_protocol")
	})
	// A loop of forged headers writes one line per interval, not one each.
	for range 5 {
		c := dialFrom(t, "127.0.0.1", ts.addr)
		c.Write(proxyHeader(t, 2, "203.0.113.7:1", c.RemoteAddr()))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.ReadAll(c)
	}
	logs := ts.logs.String()
	if n := strings.Count(logs, "not in proxy_protocol"); n != 1 {
		t.Errorf("%d lines for 6 forged headers, want 1:\n%s", n, logs)
	}
	for _, want := range []string{
		`level=WARN msg="connection refused: no PROXY protocol header from a balancer in proxy_protocol" remote_addr=127.0.0.2:`,
		`level=INFO msg="connection refused: PROXY protocol header from an address not in proxy_protocol" remote_addr=127.0.0.1:`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("no line %s in\n%s", want, logs)
		}
	}
}

// TestProxyProtocolPerAddressLimit: behind a balancer, the per-address
// limit counts each client's own address, not the balancer's.
func TestProxyProtocolPerAddressLimit(t *testing.T) {
	ts, root := proxyServer(t, "127.0.0.0/8", 10, 1)
	via := func(src string) (string, error) {
		c := dialFrom(t, "127.0.0.1", ts.addr)
		c.Write(proxyHeader(t, 2, src, c.RemoteAddr()))
		return tlsOver(t, c, root)
	}
	for _, src := range []string{"198.51.100.1:1000", "198.51.100.2:1000", "198.51.100.3:1000"} {
		if line, err := via(src); err != nil || line != "you are "+src+"\n" {
			t.Fatalf("client %s behind the balancer got %q, %v", src, line, err)
		}
	}
	if line, err := via("198.51.100.1:1001"); err == nil {
		t.Errorf("a second connection from 198.51.100.1 was served: %q", line)
	}
	testutil.Eventually(t, "refusal line", 5*time.Second, func() bool { return strings.Contains(ts.logs.String(), "per-address limit") })
	if line := logLine(ts.logs.String(), "per-address limit"); !strings.Contains(line, "remote_addr=198.51.100.1 ") {
		t.Errorf("refusal line %s, want it to name the client behind the balancer", line)
	}
}

func TestParseProxyProtocol(t *testing.T) {
	got, err := ParseProxyProtocol([]string{"10.1.2.3/8", "192.0.2.1", "2001:db8::/32"})
	if err != nil || len(got) != 3 || got[0].String() != "10.0.0.0/8" || got[1].String() != "192.0.2.1/32" || got[2].String() != "2001:db8::/32" {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := ParseProxyProtocol([]string{"10.0.0.0/8", "lb.example"}); err == nil || err.Error() != `[1] "lb.example": want an address or a CIDR prefix such as 10.0.0.0/8` {
		t.Errorf("error %v", err)
	}
}

// TestProxyProtocolPlainListener: on a plain listener the header comes
// first too; the handler gets the client's address and the bytes sent
// past the header, and can still half-close the TCP connection (as ENVOIE
// does before its error reply): the client sees the end while the handler
// still holds the connection.
func TestProxyProtocolPlainListener(t *testing.T) {
	nets, err := ParseProxyProtocol([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, ServerConfig{Plain: true, ProxyProtocol: nets}, func(_ context.Context, c *Conn) {
		io.WriteString(c, "you are "+c.RemoteAddr().String()+"\n")
		buf := make([]byte, 5)
		io.ReadFull(c, buf)
		io.WriteString(c, "got "+string(buf)+"\n")
		cw, ok := c.Conn.(interface{ CloseWrite() error })
		if !ok {
			io.WriteString(c, "no CloseWrite\n")
			return
		}
		if err := cw.CloseWrite(); err != nil {
			io.WriteString(c, "half-close: "+err.Error()+"\n")
			return
		}
		io.Copy(io.Discard, c) // until the client, having seen the end, hangs up
	})
	c := dialFrom(t, "127.0.0.1", ts.addr)
	c.Write(append(proxyHeader(t, 1, "192.0.2.44:5555", c.RemoteAddr()), "hello"...))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if want := "you are 192.0.2.44:5555\ngot hello\n"; string(got) != want || err != nil {
		t.Errorf("got %q, %v; want %q and the end", got, err, want)
	}
}

// TestProxyProtocolPlainUnlisted: on a plain listener a client from an
// unlisted address is served at once, even one that never speaks (a chat
// client that only listens) or whose first bytes begin like a signature
// and then differ; one that sends a PROXY header is refused when its
// service reads it, and said so in the log.
func TestProxyProtocolPlainUnlisted(t *testing.T) {
	nets, err := ParseProxyProtocol([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	log, logs := testutil.Logger(t, slog.LevelInfo)
	ts := startServer(t, ServerConfig{Plain: true, ProxyProtocol: nets, HandshakeTimeout: time.Minute, Logger: log},
		func(_ context.Context, c *Conn) {
			io.WriteString(c, "welcome\n")
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				io.WriteString(c, "read: "+err.Error()+"\n")
				return
			}
			io.WriteString(c, "got "+line)
		})
	for _, tc := range []struct{ name, send, want string }{
		{"silent", "", "welcome\n"},
		{"begins like version 1", "PING\n", "welcome\ngot PING\n"},
		{"begins like version 2", "\rhello\n", "welcome\ngot \rhello\n"},
		{"header", string(proxyHeader(t, 1, "203.0.113.7:1", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1})),
			"welcome\n"}, // and closed
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFrom(t, "127.0.0.1", ts.addr)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(c)
			if line, err := br.ReadString('\n'); line != "welcome\n" || err != nil {
				t.Fatalf("first line %q, %v; want welcome at once", line, err)
			}
			if tc.send == "" {
				return
			}
			io.WriteString(c, tc.send)
			// The end: a close, or a reset where a refused header's
			// bytes were left unread; not the wait running out.
			rest, err := io.ReadAll(br)
			if got := "welcome\n" + string(rest); got != tc.want || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("got %q, %v; want %q and the end", got, err, tc.want)
			}
		})
	}
	if want := `level=INFO msg="connection refused: PROXY protocol header from an address not in proxy_protocol" remote_addr=127.0.0.1:`; !strings.Contains(logs.String(), want) {
		t.Errorf("no line %s in\n%s", want, logs.String())
	}
}
