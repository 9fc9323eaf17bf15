package testutil

import (
	"net"
	"sync"
)

// Serve runs an accept loop on ln that hands each connection to handle on a
// goroutine of its own, until Accept fails (the test closed ln).
//
// The returned wait blocks until the loop and every handler it started have
// returned. Call it last when tearing down: close ln and stop whatever the
// handlers block on (cancel their context, close the server) first. Serve
// registers no cleanup of its own because that order is the caller's: a
// handler may only return once the test has cancelled something.
func Serve(ln net.Listener, handle func(net.Conn)) (wait func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
			}()
		}
	}()
	return wg.Wait
}
