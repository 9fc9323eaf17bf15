package hub_test

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/protocol/xmlsocket"
)

// A relay behind a plain loopback listener. Over TLS, secure.Server hands
// ServeConn its connections the same way, once they are through the
// handshake and the policy-request check.
func Example() {
	relay := hub.New(hub.Config{})
	defer relay.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go relay.ServeConn(ctx, c)
		}
	}()

	// join connects a client and puts it in the lobby; the reply tells
	// that the relay has placed it.
	join := func() (net.Conn, *xmlsocket.Reader) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			panic(err)
		}
		r := xmlsocket.NewReader(c, 64<<10)
		xmlsocket.WriteFrame(c, []byte(`<passerelle:join room="lobby"/>`))
		reply, _ := r.ReadFrame()
		fmt.Println(strings.TrimSuffix(string(reply), "\x00"))
		return c, r
	}
	ann, _ := join()
	defer ann.Close()
	bob, bobReader := join()
	defer bob.Close()

	xmlsocket.WriteFrame(ann, []byte("<msg>hello</msg>"))
	frame, _ := bobReader.ReadFrame()
	fmt.Printf("%q\n", frame)
	// Output:
	// <passerelle:joined room="lobby" members="1"/>
	// <passerelle:joined room="lobby" members="2"/>
	// "<msg>hello</msg>\x00"
}
