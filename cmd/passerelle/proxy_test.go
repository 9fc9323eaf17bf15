package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/passerelle/passerelle/internal/testutil"
)

// TestServeProxyProtocol runs serve behind a "balancer" (this test, on
// 127.0.0.1) named in a listener's proxy_protocol: a real version 2 header
// followed by a TLS chat client puts the client's address, not the
// balancer's, in serve's log. The line has no peer_status: the listener
// judged no client certificate.
func TestServeProxyProtocol(t *testing.T) {
	dataDir := t.TempDir()
	config := fmt.Sprintf(`data_dir: %s
listeners:
  - address: 127.0.0.1:0
    service: chat
    proxy_protocol: [127.0.0.1/32]
`, dataDir)
	s := startServeConfig(t, config, 1)
	pool, _ := caPool(t, dataDir)

	raw, err := net.DialTimeout("tcp", s.addrs["chat"][0], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	client := net.TCPAddrFromAddrPort(netip.MustParseAddrPort("198.51.100.23:51234"))
	if _, err := proxyproto.HeaderProxyFromAddrs(2, client, raw.RemoteAddr()).WriteTo(raw); err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, &tls.Config{ServerName: "localhost", RootCAs: pool})
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "<passerelle:who/>\x00")
	if got := readFrames(t, c, 1)[0]; !strings.HasPrefix(got, "<passerelle:members ") {
		t.Fatalf("who answered %q", got)
	}
	c.Close()
	testutil.EventuallyContains(t, s.errOut, `msg="chat client closed" listener=127.0.0.1:0 service=chat remote_addr=198.51.100.23:51234 reason=client_closed`+"\n", waitTimeout)

}
