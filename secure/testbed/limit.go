package testbed

import (
	"net"
	"sync"
)

// Config.MaxConns bounds the connections of every port together, where
// secure.ServerConfig.MaxConns bounds one listener. limitListener makes each
// port's listener take a slot from the testbed's one pool for every
// connection it hands to its secure.Server, and the connection gives the
// slot back when it is closed.
//
// The slot is taken after Accept, not before as secure.Server does with its
// own: twenty listeners each holding a slot while idle in Accept would keep
// twenty from the clients, and with MaxConns under twenty leave some ports
// unserved. An accepted connection waits for a slot instead, and its
// listener accepts no other meanwhile: further clients wait in the listen
// backlog, as they do at secure.Server's limit.
func (t *Testbed) limitListener(ln net.Listener) net.Listener {
	return &limitedListener{Listener: ln, slots: t.limit, done: make(chan struct{})}
}

type limitedListener struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	once  sync.Once
}

func (l *limitedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		c.Close()
		return nil, net.ErrClosed
	}
	return &limitedConn{Conn: c, release: sync.OnceFunc(func() { <-l.slots })}, nil
}

// Close also wakes an Accept whose connection waits for a slot.
func (l *limitedListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
