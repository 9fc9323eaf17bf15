package hub

// CloseReason says why the hub ended a client's connection. The values are
// stable: they appear in logs (key "reason") and in Stats.Closed.
type CloseReason string

const (
	// ReasonClientClosed: the client closed its end (EOF or reset).
	ReasonClientClosed CloseReason = "client_closed"
	// ReasonTooLarge: a frame longer than Config.MaxMessage.
	ReasonTooLarge CloseReason = "too_large"
	// ReasonSlowConsumer: the client's outbound queue would have exceeded
	// Config.QueueBytes.
	ReasonSlowConsumer CloseReason = "slow_consumer"
	// ReasonFlood: the client sent faster than Config.FloodRate allows.
	ReasonFlood CloseReason = "flood"
	// ReasonWriteTimeout: a write to the client took longer than
	// Config.WriteTimeout.
	ReasonWriteTimeout CloseReason = "write_timeout"
	// ReasonWriteError: a write to the client failed.
	ReasonWriteError CloseReason = "write_error"
	// ReasonReadError: a read from the client failed (other than a clean
	// close).
	ReasonReadError CloseReason = "read_error"
	// ReasonHandshake: the TLS handshake failed or timed out.
	ReasonHandshake CloseReason = "handshake_failed"
	// ReasonShutdown: the hub was closed or the connection's context was
	// cancelled.
	ReasonShutdown CloseReason = "shutdown"
	// ReasonPolicy: the client asked for the policy file and got it.
	ReasonPolicy CloseReason = "policy"
)

// numReasons is the number of CloseReason values, for the counters.
const numReasons = 10

// index numbers the reasons for Hub's counters, in the order of allReasons.
func (r CloseReason) index() int {
	for i, x := range allReasons() {
		if x == r {
			return i
		}
	}
	return numReasons - 1
}

// allReasons lists every CloseReason.
func allReasons() [numReasons]CloseReason {
	return [numReasons]CloseReason{
		ReasonClientClosed, ReasonTooLarge, ReasonSlowConsumer, ReasonFlood,
		ReasonWriteTimeout, ReasonWriteError, ReasonReadError, ReasonHandshake,
		ReasonShutdown, ReasonPolicy,
	}
}
