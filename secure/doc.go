// Package secure is passerelle's pair of TLS sockets, after AIR's ServerSocket
// and SecureSocket, and the certificate judgement they share.
//
// # Where to start
//
//   - Server (server.go, handshake.go, limit.go): passerelle's one accept
//     loop, with connection limits in all and per address (Limiter),
//     back-off on accept errors, a deadline for everything before the
//     handler, the Preface hook (the policy-file request), the TLS
//     handshake, client certificate verdicts, and a shutdown that waits for
//     handlers. Handlers receive a *Conn already past its Preface and
//     handshake; Conn.Abort closes it without a TLS alert.
//   - Dial (client.go): the SecureSocket. It connects, judges the server
//     certificate and returns a *ClientConn only when the status is trusted;
//     otherwise a *HandshakeError whose Verdict says why, so the status can
//     be read after a failed connection as AIR reads it after its IOError.
//   - Classify (classify.go): the judgement itself, for any chain, usable by
//     embedding applications. Both sides use it; crypto/tls's own
//     verification is switched off so that every defect gets its own name.
//   - Revocation (revocation.go): stapled OCSP, CRL files, OCSP responders
//     and CRL distribution points, in RevocationOff, RevocationSoft (the
//     default) or RevocationHard mode, checked by certs/revocation, whose
//     Cache a Server keeps (VerifyOptions.RevocationCache).
//
// Other files: verdict.go (Verdict, VerifyOptions, Role), conn.go (the
// server-side Conn), tlsconfig.go (versions and cipher suites), fetch.go (AIA
// issuers and the default HTTP client), status.go (the nine statuses).
//
// # Status rules
//
// A Verdict's Status is one of the nine words of AIR's
// flash.security.CertificateStatus. Classify applies the rules below in
// order; the first that applies decides. The order follows OpenSSL's
// verification where it can (chain building, then chain extensions and
// purpose, then host name, then revocation) except that the leaf's dates are
// judged before its name: "who vouches for it, what it is for, when, for
// whom, still standing?".
//
//	#  status            when
//	-  ----------------  ------------------------------------------------------
//	0  unknown           no handshake result yet (before connecting, a TCP
//	                     failure, a handshake that timed out before any
//	                     certificate arrived; for a server, a client that sent
//	                     no certificate)
//	1  invalid           no certificate was presented, or the handshake failed
//	                     before any certificate could be judged (protocol
//	                     version, cipher suites, a peer that is not TLS)
//	2  untrustedSigners  the presented path does not reach a trusted root:
//	                     a self-signed leaf or root not in the trust store, or
//	                     an issuer neither sent nor trusted (and not reachable
//	                     through the AIA caIssuers URL, rule 3a)
//	3  invalidChain      the path reaches a trusted root but is broken in
//	                     itself:
//	                     a. an intermediate the peer failed to send, found at
//	                        the certificate's AIA caIssuers URL (fetched over
//	                        HTTP as browsers do; the peer is still at fault;
//	                        a Server follows a client's URL only with
//	                        FetchClientIssuers)
//	                     b. an issuer that is not a CA (basic constraints) or
//	                        whose key usage forbids certificate signing
//	                     c. a signature between two links that does not verify
//	                     d. an issuer outside its validity dates
//	                     e. an issuer with an unsupported critical extension
//	                     f. a path-length constraint exceeded
//	                     g. a name constraint violated, or anything else
//	                        crypto/x509 rejects in the path
//	                     h. an issuer whose extended key usage excludes the
//	                        role (checked after rule 4)
//	4  invalid           the leaf is unfit for its role: extended key usage
//	                     without serverAuth (for a server) or clientAuth (for
//	                     a client) or anyExtendedKeyUsage; a key usage with
//	                     none of digitalSignature, keyEncipherment (servers
//	                     only), keyAgreement; an unsupported critical extension
//	5  expired           now is after the leaf's notAfter
//	6  notYetValid       now is before the leaf's notBefore
//	7  principalMismatch the DNS name or IP address asked for is not in the
//	                     leaf's subjectAltName (the common name is not read,
//	                     RFC 6125 section 6.4.4); servers judging clients check
//	                     no name unless ServerConfig.ClientNames lists some,
//	                     of which the client certificate must cover one
//	8  revoked           a stapled OCSP response, a CRL file, the OCSP
//	                     responder or a CRL distribution point says the leaf
//	                     is revoked (only the leaf is checked)
//	9  invalid           a revocation source answered with something that does
//	                     not verify (forged or broken OCSP response or CRL), in
//	                     any mode; or revocation is RevocationHard and no source
//	                     answered (including a leaf naming no source)
//	10 trusted           none of the above
//
// Dates of issuers are judged at the current time; the leaf's dates only by
// rules 5 and 6, so an expired leaf under a good chain is expired, not
// invalidChain.
//
// The work is bounded, not the shape of the chain. A peer may send up to 64
// certificates, their own included, and 128 KiB of them; more gets
// invalidChain at once, before any signature is checked ("the peer sent 809
// certificates; at most 64 are accepted"), since crypto/tls accepts some 800
// in one message and each could claim to be the issuer of each other one.
// Within those bounds a valid path is found wherever it lies among
// cross-signs, candidate issuers and unrelated certificates: crypto/x509's
// path search runs first, and only when it finds no good path does
// passerelle order the certificates itself to name the defect (buildPath).
// Each search may cost what 100 signature checks with P-256 keys cost; a
// check with a larger key counts as several (RSA of n bits (n/2048)², P-384
// 8, P-521 22; sigwork.go). crypto/x509's search runs only when what it may
// cost, foreseen from the names and keys sent (searchWork), is within that;
// passerelle's own is charged check by check. A chain in which no path is
// found within them gets invalidChain ("no path to a trusted root found
// within the budget of 100 signature checks (larger keys count as several)
// among the certificates the peer sent").
//
// # Server behaviour
//
// A Server's Limiter admits each accepted connection: one over the
// per-address limit is closed at once; at the overall limit the connection
// waits for a slot and the listener accepts no other meanwhile, so further
// clients wait in the kernel's listen backlog. Both are logged, at most once
// every ten seconds each. Everything before the handler, the Preface (the
// Flash policy-file request: protocol/policy's Gate) and the handshake, must
// end within HandshakeTimeout. A client that sends plain text to a TLS port
// is shown to the Preface, and unless it was a policy request gets a one-line
// hint and is closed. Each connection's TLS configuration is made for it by
// the listener's GetConfigForClient hook, so no configuration is changed
// once crypto/tls has it, and session tickets use keys that crypto/tls
// rotates. Client certificates are requested, never
// verified by crypto/tls, and judged by Classify during the handshake:
// ClientAuthRequire refuses anything but trusted, ClientAuthRequest lets
// everyone in and Conn.PeerStatus says what was wrong, ClientAuthRequireAny
// refuses only a client that sends no certificate, and Authorize may refuse
// on top. GetClientPolicy chooses that policy per ClientHello (per server
// name, say, beside GetCertificate). Every refusal is a log line with
// remote_addr, status and reason.
//
// Revocation sources and AIA issuers are fetched over HTTP only for what
// needs them: revocation only once the chain reached a trusted root (so the
// URLs are a trusted CA's), AIA issuers before that (so a Server does not
// follow them for client certificates unless told to). A Server keeps the
// OCSP responses and CRLs it fetched until their nextUpdate or HTTP max-age,
// a minute at most, and handshakes that need the same answer at once share
// one request (newRevocationCache, certs/revocation's Cache).
//
// TLS 1.2 is the minimum; TLS 1.2 suites are ECDHE with AES-GCM or
// ChaCha20-Poly1305 only (CipherSuites).
package secure
