package hub

import (
	"log/slog"
	"time"

	"github.com/passerelle/passerelle/protocol/policy"
	"github.com/passerelle/passerelle/protocol/xmlsocket"
)

// Config tunes a Hub. The zero value is usable: every field documents its
// default.
type Config struct {
	// MaxMessage is the largest frame a client may send, in bytes, its NUL
	// included. A longer frame ends that client's connection (too_large).
	// Default 64 KiB.
	MaxMessage int
	// QueueBytes is each client's outbound budget: the bytes queued for it
	// and not yet written. A frame that would exceed it disconnects the
	// receiver (slow_consumer). Default 256 KiB; it is raised to MaxMessage if
	// smaller, so that one maximal frame always fits.
	QueueBytes int
	// FloodRate is the sustained number of frames per second a client may
	// send, control messages included; FloodBurst is how many may come at
	// once. Exceeding them disconnects the client (flood). Defaults 200/s and
	// 400. A negative FloodRate disables the limit.
	FloodRate  float64
	FloodBurst int
	// WriteTimeout bounds each write to a client (write_timeout). Default 10s.
	WriteTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake when ServeConn is given a
	// *tls.Conn that has not done it yet. Default 10s.
	HandshakeTimeout time.Duration
	// Policy is the cross-domain-policy document answered to
	// "<policy-file-request/>"; policy.Default() when nil.
	Policy []byte
	// PolicyWait is how long a silent new client may take before it is
	// taken for a chat client and starts receiving (sooner if half its
	// QueueBytes fill up meanwhile). Default 500ms.
	PolicyWait time.Duration
	// ReadBufferSize is each client's fixed read buffer. Default
	// xmlsocket.DefaultBufferSize (512 bytes); longer frames use a
	// temporary slice of their own.
	ReadBufferSize int
	// Logger receives one line per closed client (remote_addr, reason);
	// nil means no logging.
	Logger *slog.Logger
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = 64 << 10
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = 256 << 10
	}
	cfg.QueueBytes = max(cfg.QueueBytes, cfg.MaxMessage)
	if cfg.FloodRate == 0 {
		cfg.FloodRate = 200
	}
	if cfg.FloodBurst <= 0 {
		cfg.FloodBurst = 400
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.Policy == nil {
		cfg.Policy = policy.Default()
	}
	if cfg.PolicyWait <= 0 {
		cfg.PolicyWait = 500 * time.Millisecond
	}
	if cfg.ReadBufferSize <= 0 {
		cfg.ReadBufferSize = xmlsocket.DefaultBufferSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}
