package certs

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/passerelle/passerelle/internal/testutil"
)

func TestZapLogsReachSlog(t *testing.T) {
	tests := []struct {
		name     string
		minLevel slog.Level
		log      func(*zap.Logger)
		want     string // "" when nothing may be written
	}{
		{"info becomes debug", slog.LevelDebug,
			func(z *zap.Logger) { z.Info("obtaining certificate", zap.String("identifier", "a.test")) },
			`level=DEBUG msg="obtaining certificate" component=certmagic identifier=a.test`},
		{"info hidden at info level", slog.LevelInfo,
			func(z *zap.Logger) { z.Info("obtaining certificate") }, ""},
		{"warn stays warn, fields sorted, logger named", slog.LevelInfo,
			func(z *zap.Logger) {
				z.Named("maintenance").With(zap.String("z", "last")).Warn("renewal failed", zap.Error(errors.New("boom")), zap.Duration("retrying_in", time.Minute))
			},
			`level=WARN msg="renewal failed" component=certmagic logger=maintenance error=boom retrying_in=1m0s z=last`},
		{"error stays error", slog.LevelError,
			func(z *zap.Logger) { z.Error("could not get certificate from issuer") },
			`level=ERROR msg="could not get certificate from issuer" component=certmagic`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := &testutil.Buffer{}
			log := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: tt.minLevel,
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				}}))
			tt.log(newZapLogger(log))
			got := strings.TrimSuffix(buf.String(), "\n")
			if got != tt.want {
				t.Errorf("log = %q\nwant  %q", got, tt.want)
			}
		})
	}
}
