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
// Start with Request and Default. Gate (gate.go) reads a connection's first
// bytes for the request before a TLS handshake (secure.ServerConfig.Preface),
// as Flash sends the request in clear on the port it will then use for TLS,
// and answers it; after the handshake, and on plain listeners, the front door
// of package web tells the request apart from every other first message
// (IsRequest) and answers it with Gate.Answer. A master policy listener (port
// 843) is a listener whose service only closes what the Gate hands on.
package policy
