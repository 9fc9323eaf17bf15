package secure_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"time"

	"github.com/passerelle/passerelle/secure"
)

// A SecureSocket-style client: the status is readable after a failed
// connection, as AIR reads serverCertificateStatus after its IOError. Here
// the server's certificate comes from a CA the client does not trust.
func ExampleDial() {
	untrusted := httptest.NewTLSServer(nil) // a certificate for example.com, from httptest's own CA
	defer untrusted.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := secure.Dial(ctx, untrusted.Listener.Addr().String(), secure.ClientConfig{ServerName: "example.com"})
	var he *secure.HandshakeError
	switch {
	case errors.As(err, &he):
		fmt.Println("refused:", he.Verdict.Status)
		return
	case err != nil:
		fmt.Println("no connection:", err) // status stays unknown
		return
	}
	defer conn.Close()
	fmt.Println(conn.Status())
	// Output: refused: untrustedSigners
}

// A ServerSocket-style listener answering like the echo server of seed 001
// (the ServerSocket example of the AIR socket chapter, see protocol/echo), with
// client certificates requested and their status available to the handler.
func ExampleServer() {
	// Any certificate will do; this one is httptest's, for example.com.
	ts := httptest.NewTLSServer(nil)
	cert := ts.TLS.Certificates[0]
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	ts.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &secure.Server{
		Config: secure.ServerConfig{
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil },
			ClientAuth:     secure.ClientAuthRequest,
			Logger:         slog.New(slog.DiscardHandler),
		},
		Handler: func(ctx context.Context, c *secure.Conn) {
			fmt.Fprintf(c, "Connected. (your certificate: %s)\n", c.PeerStatus())
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				fmt.Fprintf(c, "Echo -- %s", buf[:n])
			}
		},
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	defer func() { stop(); fmt.Println("Serve returned", <-served) }()

	// A client without a certificate, trusting the server's.
	conn, err := secure.Dial(ctx, ln.Addr().String(), secure.ClientConfig{ServerName: "example.com", RootCAs: roots})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	greeting, _ := r.ReadString('\n')
	fmt.Print(greeting)
	io.WriteString(conn, "hello\n")
	echo, _ := r.ReadString('\n')
	fmt.Print(echo)
	// Output:
	// Connected. (your certificate: unknown)
	// Echo -- hello
	// Serve returned <nil>
}
