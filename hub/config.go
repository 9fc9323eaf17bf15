package hub

import (
	"log/slog"
	"time"

	"github.com/passerelle/passerelle/protocol/xmlsocket"
)

// The defaults, written once: a zero Config field takes the value below, and
// passerelle serve reads them from here for its own defaults.
const (
	// DefaultMaxMessage is Config.MaxMessage's default: 64 KiB, NUL included.
	DefaultMaxMessage = 64 << 10
	// DefaultQueueBytes is Config.QueueBytes's default: 256 KiB.
	DefaultQueueBytes = 256 << 10
	// DefaultFloodRate is the flood limit passerelle serve applies, in
	// messages per second. It is not a zero-value default: a zero
	// Config.FloodRate means no limit.
	DefaultFloodRate = 200.0
	// DefaultFloodBurst is Config.FloodBurst's default when a flood limit is
	// set.
	DefaultFloodBurst = 400
	// DefaultWriteTimeout is Config.WriteTimeout's default.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultParkAfter is Config.ParkAfter's default.
	DefaultParkAfter = time.Second
)

// Config tunes a Hub. The zero value is usable: every field documents its
// default.
type Config struct {
	// MaxMessage is the largest message a client may send, in bytes, its
	// NUL included. A longer one ends that client's connection (too_large).
	// Default DefaultMaxMessage.
	MaxMessage int
	// QueueBytes is each client's outbound budget: the bytes queued for it
	// and not yet written. A sender whose message would exceed a
	// receiver's budget stops being read until there is room (back-pressure:
	// a fast sender is slowed, never disconnected for it); a receiver whose
	// queue stays full with no write progress for SlowReceiverTimeout is
	// disconnected (slow_consumer). Messages from Publish do not wait: one
	// that would exceed a member's budget disconnects that member.
	// Default DefaultQueueBytes; it is raised to MaxMessage if smaller, so
	// that one maximal message always fits.
	QueueBytes int
	// SlowReceiverTimeout is how long a receiver may leave its queue full
	// without any write progress before it is disconnected (slow_consumer);
	// it is also the longest a sender waits for that receiver. Default
	// WriteTimeout.
	SlowReceiverTimeout time.Duration
	// FloodRate is the sustained number of messages per second a client may
	// send, control messages included; FloodBurst is how many may come at
	// once (a golang.org/x/time/rate bucket). Exceeding them disconnects
	// the client (flood). The time the relay stopped reading a client to
	// wait for a full receiver does not count: the client is granted what
	// the rate allows in that time on top of the bucket, up to FloodRate ×
	// SlowReceiverTimeout + FloodBurst, for what it sent meanwhile and the
	// relay reads at once afterwards. A FloodRate of 0
	// (the zero Config) or below means no limit; passerelle serve uses
	// DefaultFloodRate. FloodBurst defaults to DefaultFloodBurst.
	FloodRate  float64
	FloodBurst int
	// WriteTimeout bounds each write to a client (write_timeout). Default
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// ReadBufferSize is the read buffer of each byte-stream client
	// (ServeConn). Default xmlsocket.DefaultBufferSize (512 bytes); it grows
	// while a sender keeps it full and shrinks back when reads get short.
	ReadBufferSize int
	// ParkAfter is how long a client's reader waits for a message in its
	// own goroutine. A client that sent nothing for that long is parked:
	// the goroutine that read it returns (its stack, 4 KiB or more once
	// crypto/tls has run in it, goes with it) and the hub's Poller, one
	// epoll set, starts a reader again when the client sends. Only byte
	// streams and Parkable transports whose connection can be detached
	// from their listener's handler (secure.Conn, through a peekconn.Conn)
	// and waited on (internal/readiness) are parked; others wait as
	// before. Default DefaultParkAfter; below zero, never.
	ParkAfter time.Duration
	// Link connects the hub to the other nodes of a cluster; nil (the
	// default) is a single node.
	Link Link
	// Logger receives a line per closed client (remote_addr, reason),
	// rate-limited to one per reason and logger (see WithLogger) every
	// ratelog.DefaultEvery with the count of the others (suppressed=N),
	// and, at debug level, one per new client; nil means no logging. The
	// Observer counts every close.
	Logger *slog.Logger
	// Observer, if set, is told of every relayed message and closed client
	// (metrics); nil costs nothing.
	Observer Observer
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = DefaultQueueBytes
	}
	cfg.QueueBytes = max(cfg.QueueBytes, cfg.MaxMessage)
	if cfg.FloodRate < 0 {
		cfg.FloodRate = 0
	}
	if cfg.FloodBurst <= 0 {
		cfg.FloodBurst = DefaultFloodBurst
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.SlowReceiverTimeout <= 0 {
		cfg.SlowReceiverTimeout = cfg.WriteTimeout
	}
	if cfg.ReadBufferSize <= 0 {
		cfg.ReadBufferSize = xmlsocket.DefaultBufferSize
	}
	if cfg.ParkAfter == 0 {
		cfg.ParkAfter = DefaultParkAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}
