// Package allow restricts which client certificates a mutual-TLS listener
// accepts, beyond "signed by a trusted CA".
//
// A List names the identities allowed in: certificate common names, DNS
// names and URIs (SPIFFE IDs, for instance), each a pattern that may hold
// wildcards, and SPKI pins (the base64 SHA-256 of a SubjectPublicKeyInfo, the
// same form as HTTP public key pinning, RFC 7469 section 2.4). A certificate
// is allowed when any one entry of any kind matches it; an empty List allows
// everything, so a listener without an allow-list behaves as before.
//
// Start with List.Check, which judges one leaf certificate and returns a
// *DeniedError naming what the certificate carried and why it was refused.
// Authorize adapts a List to the secure server's ServerConfig.Authorize hook;
// it also takes the handshake verdict into account: names and URIs are only
// believed when the chain verified (Status "trusted"), because anyone can
// write any name into a self-signed certificate, whereas an SPKI pin is
// enough on its own, since the handshake proved the client holds the pinned
// key.
//
// Pattern syntax (see Match): "*" matches one or more characters within one
// label of a name (between dots) or one segment of a URI (between slashes);
// "**" matches one or more characters across labels or segments. DNS names are
// compared without regard to case; common names and URIs exactly.
package allow
