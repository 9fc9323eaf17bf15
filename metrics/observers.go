package metrics

import (
	"net"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/protocol/envoie"
	"github.com/passerelle/passerelle/secure"
)

// Transports, for the transport label.
const (
	TransportTLS   = "tls"
	TransportPlain = "plain"
)

// Listener observes one listener's secure.Server (secure.Observer) and
// tells whether its accept loop runs. Its series are labelled with the
// listener's configured address, its service and its transport.
type Listener struct {
	up       atomic.Bool
	upGauge  prometheus.Gauge
	open     prometheus.Gauge
	accepted prometheus.Counter
	refused  *prometheus.CounterVec // curried with the listener's labels
	outcomes map[secure.HandshakeOutcome]prometheus.Counter
	statuses map[secure.Status]prometheus.Counter
	duration prometheus.Observer
}

var _ secure.Observer = (*Listener)(nil)

// Listener returns the observer of the listener configured at address for
// service over transport (TransportTLS or TransportPlain); clientCerts
// tells a listener that judges client certificates and may refuse one. Every
// series the listener can move is created at zero, so that a rate shows from
// the first scrape; those it cannot (handshakes on a plain listener,
// refused client certificates where none is asked for) are not made at all.
func (m *Metrics) Listener(address, service, transport string, clientCerts bool) *Listener {
	lv := prometheus.Labels{labelListener: address, labelService: service, labelTransport: transport}
	l := &Listener{
		upGauge:  m.listenerUp.With(lv),
		open:     m.connsOpen.With(lv),
		accepted: m.connsAccepted.With(lv),
		refused:  m.connsRefused.MustCurryWith(lv),
		outcomes: map[secure.HandshakeOutcome]prometheus.Counter{},
		statuses: map[secure.Status]prometheus.Counter{},
	}
	l.refused.WithLabelValues(secure.RefusedPerAddress)
	if transport == TransportTLS {
		for _, o := range secure.HandshakeOutcomes {
			l.outcomes[o] = m.handshakes.WithLabelValues(address, service, string(o))
		}
		for _, s := range secure.Statuses {
			if clientCerts {
				l.statuses[s] = m.certRefused.WithLabelValues(address, service, string(s))
			}
		}
		l.duration = m.handshakeTime.WithLabelValues(address, service)
	}
	return l
}

// Serving implements secure.Observer.
func (l *Listener) Serving(net.Addr) {
	l.up.Store(true)
	l.upGauge.Set(1)
}

// Up reports whether the listener's accept loop runs.
func (l *Listener) Up() bool { return l.up.Load() }

// Opened implements secure.Observer.
func (l *Listener) Opened() {
	l.accepted.Inc()
	l.open.Inc()
}

// Closed implements secure.Observer.
func (l *Listener) Closed() { l.open.Dec() }

// Refused implements secure.Observer. reason is one of secure's words
// (RefusedPerAddress), never peer input.
func (l *Listener) Refused(reason string) { l.refused.WithLabelValues(reason).Inc() }

// Handshake implements secure.Observer.
func (l *Listener) Handshake(outcome secure.HandshakeOutcome, status secure.Status, d time.Duration) {
	if c, ok := l.outcomes[outcome]; ok {
		c.Inc()
	}
	if outcome == secure.HandshakeRefused {
		if c, ok := l.statuses[status]; ok {
			c.Inc()
		}
	}
	if l.duration != nil {
		l.duration.Observe(d.Seconds())
	}
}

// Hub returns the chat hub's observer, or nil (no observer at all) when m
// is nil.
func (m *Metrics) Hub() hub.Observer {
	if m == nil {
		return nil
	}
	o := &hubObserver{messages: m.chatMessages, deliveries: m.chatDeliveries, bytes: m.chatBytes, closed: map[hub.CloseReason]prometheus.Counter{}}
	for _, r := range closeReasons {
		o.closed[r] = m.chatClosed.WithLabelValues(string(r))
	}
	o.other = m.chatClosed
	return o
}

type hubObserver struct {
	messages, deliveries, bytes prometheus.Counter
	closed                      map[hub.CloseReason]prometheus.Counter
	other                       *prometheus.CounterVec
}

func (o *hubObserver) Relayed(bytes, receivers int) {
	o.messages.Inc()
	if receivers > 0 {
		o.deliveries.Add(float64(receivers))
		o.bytes.Add(float64(bytes * receivers))
	}
}

func (o *hubObserver) Closed(reason hub.CloseReason) {
	if c, ok := o.closed[reason]; ok {
		c.Inc()
		return
	}
	// A reason added to the hub after this list: still one of the hub's
	// own words.
	o.other.WithLabelValues(string(reason)).Inc()
}

// Envoie returns the observer of the asset listener configured at address,
// or nil (no observer at all) when m is nil.
func (m *Metrics) Envoie(address string) envoie.Observer {
	if m == nil {
		return nil
	}
	o := &envoieObserver{
		refusals: m.envoieRefusals.MustCurryWith(prometheus.Labels{labelListener: address}),
		complete: m.envoieSent.WithLabelValues(address, "complete"),
		cut:      m.envoieSent.WithLabelValues(address, "cut"),
		bytes:    m.envoieBytes.WithLabelValues(address),
	}
	for _, c := range envoieCodes {
		o.refusals.WithLabelValues(string(c))
	}
	return o
}

// envoieCodes are ENVOIE's error codes, each shown from zero.
var envoieCodes = []envoie.Code{
	envoie.CodeBadRequest, envoie.CodeUnknownCommand, envoie.CodeBadName, envoie.CodeNotFound,
	envoie.CodeOutsideRoot, envoie.CodeNotRegular, envoie.CodeTooLarge, envoie.CodeBadOffset,
	envoie.CodeForbidden, envoie.CodeBusy, envoie.CodeUnavailable,
}

type envoieObserver struct {
	refusals      *prometheus.CounterVec
	complete, cut prometheus.Counter
	bytes         prometheus.Counter
}

func (o *envoieObserver) Refused(code envoie.Code) { o.refusals.WithLabelValues(string(code)).Inc() }

func (o *envoieObserver) Sent(bytes int64, complete bool) {
	if complete {
		o.complete.Inc()
	} else {
		o.cut.Inc()
	}
	o.bytes.Add(float64(bytes))
}
