package secure

import (
	"errors"
	"net"
	"time"
)

// Observer is told what a Server does with each connection, for metrics.
// Its methods may be called from many goroutines at once and must not
// block. A nil ServerConfig.Observer costs nothing.
type Observer interface {
	// Serving is called once the accept loop runs on addr.
	Serving(addr net.Addr)
	// Opened is called for each connection admitted by the Limiter, and
	// Closed once that connection has ended (after its handler, or when
	// it ended before one).
	Opened()
	Closed()
	// Refused is called for each connection the Limiter closed at once;
	// reason is the word the log line gives (RefusedPerAddress).
	Refused(reason string)
	// Handshake is called once per connection to a TLS listener, when its
	// fate before the handler is known: the outcome, the verdict on the
	// client certificate (StatusUnknown when none was judged) and the time
	// from accept.
	Handshake(outcome HandshakeOutcome, status Status, d time.Duration)
}

// RefusedPerAddress is the Limiter's refusal of a connection over the
// per-address limit, as logged (key "reason") and passed to
// Observer.Refused.
const RefusedPerAddress = "per_address"

// HandshakeOutcome is how a connection to a TLS listener ended its
// handshake. The values appear in logs (key "outcome"; the "client refused"
// line gives the certificate's status instead) and metrics.
type HandshakeOutcome string

// The handshake outcomes.
const (
	// HandshakeOK: the handshake completed and the handler has the
	// connection.
	HandshakeOK HandshakeOutcome = "ok"
	// HandshakeRefused: the client certificate was refused (client_auth
	// require, or the allow-list).
	HandshakeRefused HandshakeOutcome = "refused"
	// HandshakeTimeout: the client did not finish within the handshake
	// timeout.
	HandshakeTimeout HandshakeOutcome = "timeout"
	// HandshakeFailed: the handshake failed (protocol error, no common
	// cipher, the client rejected the server's certificate...).
	HandshakeFailed HandshakeOutcome = "failed"
	// HandshakeClosed: the client closed before sending anything.
	HandshakeClosed HandshakeOutcome = "closed"
	// HandshakePlainText: the client spoke plain text to the TLS port and
	// was told so.
	HandshakePlainText HandshakeOutcome = "plain_text"
	// HandshakePreface: the Preface answered the client itself (a Flash
	// policy-file request).
	HandshakePreface HandshakeOutcome = "preface"
)

// HandshakeOutcomes lists the outcomes in a stable order.
var HandshakeOutcomes = [...]HandshakeOutcome{
	HandshakeOK, HandshakeRefused, HandshakeTimeout, HandshakeFailed,
	HandshakeClosed, HandshakePlainText, HandshakePreface, HandshakeProxyHeader,
}

// observeHandshake reports a connection's handshake outcome, if the
// configuration has an Observer. deadline is the connection's handshake
// deadline, from which the time since accept follows.
func (st *serveState) observeHandshake(outcome HandshakeOutcome, status Status, deadline time.Time) {
	if o := st.cfg.Observer; o != nil {
		o.Handshake(outcome, status, time.Since(deadline.Add(-st.cfg.HandshakeTimeout)))
	}
}

// observeRefused reports a connection the Limiter refused.
func (st *serveState) observeRefused(err error) {
	if o := st.cfg.Observer; o != nil && errors.Is(err, ErrTooManyFromAddress) {
		o.Refused(RefusedPerAddress)
	}
}

// observeConn reports a connection opened (true) or closed (false).
func (st *serveState) observeConn(opened bool) {
	if o := st.cfg.Observer; o != nil {
		if opened {
			o.Opened()
		} else {
			o.Closed()
		}
	}
}
