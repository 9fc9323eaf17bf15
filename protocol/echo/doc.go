// Package echo is the diagnostic echo service of seed 001, the ServerSocket
// example of the AIR/OpenFL socket chapter: on connect the server sends
// "Connected.", then answers each chunk it receives with "Echo -- " followed
// by that chunk. There is no framing: a chunk is whatever one read returns
// (one TLS record or one TCP segment's worth), as in the seed's
// socketDataHandler, which echoes socket.bytesAvailable.
//
// Policy requests are answered here too, as on every passerelle listener:
// "Connected." is held back until the first bytes show that the client is
// not asking for the policy file, or until Server.PolicyWait passes in
// silence (see package policy).
//
// Start with Server.ServeConn.
package echo
