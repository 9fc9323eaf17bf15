// Package peekconn provides Conn, passerelle's one peek-and-replay
// connection: whoever classifies a client (the TLS record sniff before the
// handshake, the policy Gate, the front door after it) reads its first
// bytes through Fill, and whoever then serves the client reads them again,
// in order, before the rest.
//
// Start with New and Conn.Fill.
package peekconn
