// Package echo is the diagnostic echo service of seed 001, the ServerSocket
// example of the AIR/OpenFL socket chapter: on connect the server sends
// "Connected.", then answers each chunk it receives with "Echo -- " followed
// by that chunk. There is no framing: a chunk is whatever one read returns
// (one TLS record or one TCP segment's worth), as in the seed's
// socketDataHandler, which echoes socket.bytesAvailable.
//
// The service receives connections already through TLS and already
// classified by the listener's front door (package web's Door), the same way
// for every service: "Connected." goes out once the client is known to be an
// echo client, at its first bytes or after chat.policy_wait of silence.
//
// Start with Server.ServeConn.
package echo
