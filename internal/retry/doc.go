// Package retry is passerelle's one way to try something again: a delay
// that doubles after each failure up to a ceiling (Backoff), a wait that
// ends with its context (Sleep), and a loop made of both (Do).
//
// The accept loop backs off on a temporary Accept error (secure/server.go),
// the OCSP stapler on a responder that fails (certs/revocation), the
// trust-store change on a system command that races another process and
// the local CA on another process still writing it (certs), and the
// cluster on a JetStream bucket not ready, a lock held by another node or a
// replica a moment behind (cluster): each with its own delays, all with
// this one mechanism. Everything is in retry.go.
package retry
