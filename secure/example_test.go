package secure_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/passerelle/passerelle/secure"
)

// A SecureSocket-style client: the status is readable after a failed
// connection, as AIR reads serverCertificateStatus after its IOError.
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := secure.Dial(ctx, "chat.example.org:10000", secure.ClientConfig{})
	var he *secure.HandshakeError
	switch {
	case errors.As(err, &he):
		fmt.Println("refused:", he.Verdict.Status, he.Verdict.Reason)
		return
	case err != nil:
		fmt.Println("no connection:", err) // status stays unknown
		return
	}
	defer conn.Close()
	fmt.Println(conn.Status()) // trusted
}

// A ServerSocket-style listener answering like the echo server of seed 001
// (the ServerSocket example of the AIR socket chapter, see protocol/echo), with
// client certificates requested and their status available to the handler.
func ExampleServer() {
	cert, err := tls.LoadX509KeyPair("server.crt", "server.key")
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:10002")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &secure.Server{
		Config: secure.ServerConfig{
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil },
			ClientAuth:     secure.ClientAuthRequest,
			Logger:         slog.New(slog.NewTextHandler(os.Stderr, nil)),
		},
		Handler: func(ctx context.Context, c *secure.Conn) {
			io.WriteString(c, "Connected.")
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
	defer stop()
	if err := srv.Serve(ctx, ln); err != nil {
		fmt.Println(err)
	}
}
