// Package testacme runs a real ACME CA inside a test process: Pebble's own
// CA, VA and WFE packages behind an HTTPS test server, with a DNS server
// that resolves every name to 127.0.0.1. Certificates are therefore issued
// through the whole RFC 8555 exchange, and the TLS-ALPN-01 challenge
// (RFC 8737) is validated by connecting to a loopback port the test
// chooses: the port of the listener under test.
//
// Start with Start, which takes that port and the lifetime of the
// certificates to issue. The returned *Pebble gives what a client of the CA
// needs: DirectoryURL (acme.ca), HTTPSRootFile (acme.ca_root, since the
// WFE's HTTPS certificate is self-made) and Roots (the issuing root, for
// clients verifying the certificates served). Close stops the CA early, to
// test what happens when it cannot be reached.
//
// Name is a name worth asking for: any name works, as the DNS server
// answers 127.0.0.1 to every A question.
package testacme
