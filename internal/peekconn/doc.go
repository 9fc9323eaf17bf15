// Package peekconn provides Conn, passerelle's one peek-and-replay
// connection: whoever classifies a client (the PROXY header check and the
// TLS record sniff before the handshake, the policy Gate, the front door
// after it) reads its first bytes through Fill, and whoever then serves the
// client reads them again, in order, before the rest. A parser that must
// read ahead on its own (go-proxyproto's bufio.Reader) hands what it read
// past its part to NewReplaying.
//
// Start with New and Conn.Fill.
package peekconn
