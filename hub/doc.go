// Package hub is passerelle's chat relay: the Go form of the PHP chat relay
// of the seed's Flash sockets chapter (ServeurMessagerieXML.php, "Créer un
// t'chat multi-utilisateur").
//
// # Model
//
// Every connection is a client. Its messages are read whole from its
// Transport and each one is forwarded byte for byte, NUL included, to every
// other client of the sender's room, in the sender's order. A client that
// never sends a control message stays in the room named "default" with
// every other such client: the seed relay's behaviour. Messages that begin
// with "<passerelle:" are control messages (join a room, take a nickname,
// list members; see control.go and docs/chat.md); they are answered to the
// asker only and never relayed.
//
// Fan-out never blocks the sender. Each client has a bounded outbound queue
// (Config.QueueBytes, counted in bytes until they are written) and one
// writer goroutine that drains it with a write deadline, coalescing queued
// messages into few writes (writev on plain TCP, 16 KiB writes on TLS). A
// message is shared by all its receivers; queueing it costs no allocation
// per receiver. A receiver whose queue would overflow is disconnected with
// the close reason slow_consumer; nobody else waits for it. This is the
// design of nats-server's client.go.
//
// The hub deals in messages and clients, not in TLS: the server layer
// (package secure) hands it connections that are through their TLS
// handshake and past the Flash policy-request check. When a connection must
// not be closed gracefully (a write was cut in the middle of a TLS record),
// the hub calls its Abort method if it has one (Aborter), else Close.
//
// Every disconnection has a CloseReason, logged with remote_addr and reason.
//
// # Where to start reading
//
// hub.go: New, then ServeConn for a byte stream (plain TCP or TLS), Serve
// for any other Transport (transport.go: the interface a WebSocket
// transport implements, and the byte-stream one), Publish to feed a room
// from elsewhere (another node), and Close. Then client.go (the per-client
// queue and writer), room.go (membership and fan-out), control.go and
// nick.go (the control messages, nickname comparison).
package hub
