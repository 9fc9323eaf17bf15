package certs

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// certmagic logs through zap; passerelle logs through slog. slogCore is a
// zapcore.Core that turns every zap entry into a slog record on the
// manager's logger, so the operator sees one log with one format. certmagic
// is chatty at info level about routine maintenance; its debug and info
// entries go out at slog's debug level, warnings and errors at their own
// level, so a default (info) log shows only what needs attention plus the
// manager's own summary lines.
type slogCore struct {
	log    *slog.Logger
	fields []zapcore.Field
}

var _ zapcore.Core = (*slogCore)(nil)

// newZapLogger makes a zap logger writing into log.
func newZapLogger(log *slog.Logger) *zap.Logger {
	return zap.New(&slogCore{log: log.With("component", "certmagic")})
}

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l >= zapcore.ErrorLevel:
		return slog.LevelError
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelDebug
	}
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return c.log.Enabled(context.Background(), slogLevel(l))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{log: c.log, fields: append(append([]zapcore.Field(nil), c.fields...), fields...)}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fields {
		f.AddTo(enc)
	}
	r := slog.NewRecord(e.Time, slogLevel(e.Level), e.Message, 0)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	for _, k := range slices.Sorted(maps.Keys(enc.Fields)) {
		switch v := enc.Fields[k].(type) {
		case time.Duration:
			r.AddAttrs(slog.Duration(k, v))
		default:
			r.AddAttrs(slog.Any(k, v))
		}
	}
	return c.log.Handler().Handle(context.Background(), r)
}

func (c *slogCore) Sync() error { return nil }
