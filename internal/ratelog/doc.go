// Package ratelog writes the log lines that peers can cause, at a bounded rate.
//
// A peer that opens connections in a loop, a route that keeps failing, a
// client that sends plain text to a TLS port: each would write one line per
// event, and a flood of events would become a flood of log. A Logger lets
// one line of each key through per interval and counts the others; the next
// line of that key carries the count (suppressed=N), so a flood shows in the
// log as one line every interval with a number.
//
// This is the project's one mechanism for such lines: the connection
// limiter's refusals, the listeners' per-connection lines, ENVOIE's
// refusals and the cluster's route errors all go through it. Keys are
// chosen by the caller from a fixed vocabulary (a kind of event, a
// configured route), never from what a peer sent; the number of keys kept
// is bounded all the same.
package ratelog
