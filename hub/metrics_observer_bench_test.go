//go:build unix

package hub_test

import (
	"testing"

	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/metrics"
)

// BenchmarkFanoutMetrics runs the saturated TLS fan-out with the hub's
// metrics off (no Observer) and on (the metrics package's, as serve
// --admin installs it), in the same run. docs/operations.md records the
// figures; the metrics may not cost more than 3% of the fan-out.
//
//	go test -c -o /tmp/hub.test ./hub
//	for i in 1 2 3 4 5 6 7 8; do /tmp/hub.test -test.run '^$' -test.bench FanoutMetrics -test.benchtime 30000x; done
//
// (a loop rather than -count, which would run every "off" before every "on")
func BenchmarkFanoutMetrics(b *testing.B) {
	b.Run("off", func(b *testing.B) { hub.FanoutThroughput(b, nil) })
	b.Run("on", func(b *testing.B) { hub.FanoutThroughput(b, metrics.New().Hub()) })
}
