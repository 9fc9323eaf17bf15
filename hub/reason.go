package hub

// CloseReason says why the hub ended a client's connection. The values are
// stable: they appear in logs (key "reason").
type CloseReason string

const (
	// ReasonClientClosed: the client closed its end (EOF or reset).
	ReasonClientClosed CloseReason = "client_closed"
	// ReasonTooLarge: a message longer than Config.MaxMessage.
	ReasonTooLarge CloseReason = "too_large"
	// ReasonSlowConsumer: the client's outbound queue stayed full
	// (Config.QueueBytes) with no write progress for
	// Config.SlowReceiverTimeout, or a Publish found it full.
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
	// ReasonShutdown: the hub was closed or the connection's context was
	// cancelled.
	ReasonShutdown CloseReason = "shutdown"
)
