// Package metrics exports what passerelle does to Prometheus: connections
// and handshakes per listener, chat messages and disconnections by reason,
// assets sent, ENVOIE refusals, certificate expiry and ACME outcomes, and
// the Go runtime and process collectors.
//
// Start with New, which makes a Registry of its own (never the global
// one). Each listener gets an observer from Metrics.Listener (a
// secure.Observer, which also tells whether the listener is serving), the
// chat hub one from Metrics.Hub, each asset listener one from
// Metrics.Envoie; what a package already counts is read at scrape time
// (WatchHub, WatchCertificates, WatchACME) rather than counted twice.
// Handler serves the registry in the Prometheus text format.
//
// Labels are only words the program chooses (the configured listener
// address, service, transport, close reason, handshake outcome, the nine
// certificate status words, ENVOIE error codes) and certificate names and
// issuers from the operator's own certificates: never a client address, a
// room, a nickname or a requested path, so a client cannot grow the number
// of series.
package metrics
