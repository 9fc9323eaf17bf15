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
// Each client has a bounded outbound queue (Config.QueueBytes, counted in
// bytes until they are written) and a writer goroutine that drains it
// with a write deadline, coalescing queued messages into few writes
// (writev on plain TCP, 16 KiB writes on TLS). The writer runs only while
// the queue holds something: it is started by the first message queued
// and returns once the queue has stayed empty for 100 to 200 ms (a busy
// room's writers live from one burst to the next), so an idle client holds
// one goroutine (its reader), not two; and on Linux a client quiet for
// Config.ParkAfter (a byte stream, or a Parkable transport: web's
// WebSocket) holds none: its reader returns and the hub's Poller (one
// epoll set) starts a reader again when it sends (park.go). A message is
// shared by all its receivers; queueing it costs no allocation per
// receiver. This is the design of nats-server's client.go.
//
// # Back-pressure
//
// A relay under more load than it can carry slows down the clients that
// produce the load before it disconnects clients that read. A sender's
// reader goroutine queues each message, under the room's read lock, to
// every member that has room for it, and notes those that have none; it
// then releases the lock and waits for each of those in turn (pushWait)
// before it reads the sender's next message. While it waits it reads
// nothing, so the sender's own socket fills and the sending program is
// slowed by TCP itself; the sender is never disconnected for being fast
// (the flood limit, Config.FloodRate, is a separate rule with its own
// reason, flood). Each receiver's order is kept: a sender hands message
// n+1 to no one before message n is in every queue.
//
// One dead receiver cannot stall a room for longer than
// Config.SlowReceiverTimeout (default: WriteTimeout). The wait is not
// measured from when a sender starts waiting but from the receiver's own
// last write progress (the start or end of a write, or the moment its
// idle writer was handed a message): every sender waiting on a receiver
// that stopped reading wakes at the same deadline, at most that long after
// the receiver stopped taking bytes, and the first to wake drops it
// (slow_consumer), which releases the others at once. Senders waiting on
// several full receivers wait on their deadlines one after the other, but
// those deadlines all run together, so the total wait is still bounded by
// the timeout. The room's lock is not held during the wait, so joins,
// leaves and the other rooms are never held up. A receiver that reads
// continuously, however slowly, shows progress at each write and is never
// dropped: its senders go at its pace. Messages from Publish (another
// node) do not wait: a member whose queue has no room for them is dropped.
// A sender disconnected while it waits (its context cancelled) leaves when
// the wait ends, within the same bound; Close ends every wait at once, as it
// closes the receivers waited for.

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
// queue and writer), park.go (idle clients without a goroutine), room.go
// (membership and fan-out), control.go and nick.go (the control messages,
// nickname comparison).
package hub
