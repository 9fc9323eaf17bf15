// Package hub is passerelle's chat relay: the Go form of the seed's
// ServeurMessagerieXML.php (seed 000, "Créer un t'chat multi-utilisateur").
//
// # Model
//
// Every connection is a client. Its frames are read with an xmlsocket.Reader
// (NUL-terminated, bounded by Config.MaxMessage) and each complete frame is
// forwarded byte for byte, NUL included, to every other client of the
// sender's room, in the sender's order. A client that never sends a control
// message stays in the room named "default" with every other such client:
// the seed's behaviour. Frames that begin with "<passerelle:" are control
// messages (join a room, take a nickname, list members; see control.go and
// docs/chat.md); they are answered to the asker only and never relayed.
//
// Fan-out never blocks the sender. Each client has a bounded outbound queue
// (Config.QueueBytes, counted in bytes until they are written) and one writer
// goroutine that drains it with a write deadline, coalescing queued frames
// into few writes (writev on plain TCP, 16 KiB writes on TLS). A frame is
// shared by all its receivers; queueing it costs no allocation per receiver.
// A receiver whose queue would overflow is disconnected with the close reason
// slow_consumer; nobody else waits for it. This is the design of nats-server's
// client.go.
//
// The policy file: Flash asks "<policy-file-request/>" on every port it
// connects to. A new client is registered at once, so it loses no message,
// but its writer only starts once its first bytes show that it is not asking
// for the policy, after Config.PolicyWait of silence, or when half its queue
// budget has filled meanwhile (a listener in a busy room); a policy requester
// gets the policy and a NUL, its queue is dropped, and it is closed.
//
// Every disconnection has a CloseReason, logged with remote_addr and reason
// and counted in Stats.
//
// # Where to start reading
//
// hub.go (New, ServeConn, Close, Stats), then client.go (the per-client
// queue and writer), room.go (membership and fan-out) and control.go (the
// control messages).
package hub
