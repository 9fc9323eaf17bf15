// Package policy implements the Flash socket policy file protocol.
//
// Before a Flash or AIR client outside the application sandbox opens an
// XMLSocket or Socket to a host, it asks that host for permission: it connects
// (to the master policy port 843 first, then to the destination port itself),
// sends "<policy-file-request/>" followed by a NUL byte, and expects a
// cross-domain-policy XML document followed by a NUL, after which the server
// closes the connection. See Adobe's "Setting up a socket policy file server"
// (https://www.adobe.com/devnet/flashplayer/articles/socket_policy_files.html)
// and the cross-domain policy file specification
// (https://www.adobe.com/devnet-docs/acrobatetk/tools/AppSec/CrossDomain_PolicyFile_Specification.pdf).
//
// Start with Request, IsRequest and Default. Sniff tells, from the first bytes
// of a connection, whether the peer is asking for the policy; it reads no
// further than the request's length and hands back what it read, so a normal
// connection carries on from those bytes. Server is the handler of a master
// policy listener.
package policy
