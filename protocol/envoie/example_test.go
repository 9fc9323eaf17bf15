package envoie_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/passerelle/passerelle/protocol/envoie"
)

// A server over plain TCP on loopback with the embedded samples, and a
// client fetching one file, then asking for one that is not there. In
// passerelle the accept loop is secure.Server and the connection is TLS.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	srv := &envoie.Server{Files: envoie.Samples()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go srv.ServeConn(ctx, c)
		}
	}()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		panic(err)
	}
	c := envoie.NewClient(conn)
	defer c.Close()
	var buf bytes.Buffer
	if err := c.Get(ctx, "bienvenue.txt", &buf, nil); err != nil {
		panic(err)
	}
	line, _, _ := bytes.Cut(buf.Bytes(), []byte("\n"))
	fmt.Printf("%d bytes: %s\n", buf.Len(), line)

	err = c.Get(ctx, "absent.png", &buf, nil)
	var re *envoie.RemoteError
	if errors.As(err, &re) {
		fmt.Println(re.Code, "-", re.Message)
	}
	// Output:
	// 219 bytes: Bienvenue sur passerelle.
	// not_found - no such file "absent.png"
}
