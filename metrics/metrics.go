package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/cluster"
	"github.com/passerelle/passerelle/hub"
)

// namespace prefixes every metric name.
const namespace = "passerelle"

// Metrics is passerelle's set of metrics, in a registry of its own. The zero
// value is not usable: call New. A nil *Metrics hands out nil observers, so
// a caller with metrics off needs no branch of its own.
type Metrics struct {
	reg *prometheus.Registry

	connsOpen     *prometheus.GaugeVec
	connsAccepted *prometheus.CounterVec
	connsRefused  *prometheus.CounterVec
	listenerUp    *prometheus.GaugeVec
	handshakes    *prometheus.CounterVec
	certRefused   *prometheus.CounterVec
	handshakeTime *prometheus.HistogramVec

	chatMessages   prometheus.Counter
	chatDeliveries prometheus.Counter
	chatBytes      prometheus.Counter
	chatClosed     *prometheus.CounterVec

	envoieRefusals *prometheus.CounterVec
	envoieSent     *prometheus.CounterVec
	envoieBytes    *prometheus.CounterVec
}

// Label names.
const (
	labelListener  = "listener"
	labelService   = "service"
	labelTransport = "transport"
	labelReason    = "reason"
	labelOutcome   = "outcome"
	labelStatus    = "status"
	labelCode      = "code"
	labelResult    = "result"
)

// handshakeBuckets are the handshake duration buckets, in seconds: a
// loopback TLS 1.3 handshake takes about a millisecond, one across the
// world a few hundred, and the default handshake timeout is ten seconds.
var handshakeBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New returns the metrics, registered with the Go runtime and process
// collectors in a new registry.
func New() *Metrics {
	listener := []string{labelListener, labelService, labelTransport}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		connsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "connections_open",
			Help: "Connections being handled (handshake or service), per listener."}, listener),
		connsAccepted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "connections_accepted_total",
			Help: "Connections accepted and admitted by the connection limits, per listener."}, listener),
		connsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "connections_refused_total",
			Help: "Connections closed at once by a connection limit, per listener and reason (per_address)."},
			append(listener, labelReason)),
		listenerUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "listener_up",
			Help: "1 while the listener's accept loop runs, else 0."}, listener),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "handshakes_total",
			Help: "Connections to TLS listeners by handshake outcome (ok, refused, timeout, failed, closed, plain_text, preface, proxy_header)."},
			[]string{labelListener, labelService, labelOutcome}),
		certRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "client_certificates_refused_total",
			Help: "Clients refused during the handshake for their certificate, by its status word."},
			[]string{labelListener, labelService, labelStatus}),
		handshakeTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "handshake_duration_seconds",
			Help: "Time from accept to the end of the TLS handshake, whatever its outcome.", Buckets: handshakeBuckets},
			[]string{labelListener, labelService}),
		chatMessages: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "chat_messages_total",
			Help: "Chat messages clients sent to their room (control messages excluded)."}),
		chatDeliveries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "chat_deliveries_total",
			Help: "Chat messages queued to receivers: each message counts once per other member of its room."}),
		chatBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "chat_relayed_bytes_total",
			Help: "Bytes of chat messages queued to receivers (message size times receivers)."}),
		chatClosed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "chat_clients_closed_total",
			Help: "Chat clients gone, by reason: a drop (slow_consumer, flood, too_large, write_timeout, write_error, read_error) or not (client_closed, shutdown)."},
			[]string{labelReason}),
		envoieRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "envoie_refusals_total",
			Help: "ENVOIE requests answered with an error, by code."}, []string{labelListener, labelCode}),
		envoieSent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "envoie_assets_sent_total",
			Help: "ENVOIE and REPRENDRE transfers that ended, by result (complete or cut)."}, []string{labelListener, labelResult}),
		envoieBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "envoie_sent_bytes_total",
			Help: "Bytes of files sent by ENVOIE and REPRENDRE transfers, cut ones included."}, []string{labelListener}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.connsOpen, m.connsAccepted, m.connsRefused, m.listenerUp, m.handshakes, m.certRefused, m.handshakeTime,
		m.chatMessages, m.chatDeliveries, m.chatBytes, m.chatClosed,
		m.envoieRefusals, m.envoieSent, m.envoieBytes,
	)
	for _, r := range closeReasons {
		m.chatClosed.WithLabelValues(string(r))
	}
	return m
}

// closeReasons are the hub's close reasons, each shown from zero.
var closeReasons = []hub.CloseReason{
	hub.ReasonClientClosed, hub.ReasonTooLarge, hub.ReasonSlowConsumer, hub.ReasonFlood,
	hub.ReasonWriteTimeout, hub.ReasonWriteError, hub.ReasonReadError, hub.ReasonShutdown,
}

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	// A collector that fails (a /proc file hidden by a sandbox) loses its
	// own series, not the whole page.
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError})
}

// WatchHub exports the hub's own counts, read at each scrape: the chat
// clients connected, the rooms and the clients parked.
func (m *Metrics) WatchHub(stats func() hub.Stats) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "chat_clients",
			Help: "Chat clients connected."}, func() float64 { return float64(stats().Clients) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "chat_rooms",
			Help: "Chat rooms, the default one included."}, func() float64 { return float64(stats().Rooms) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "chat_parked_clients",
			Help: "Chat clients parked: quiet, holding no goroutine until they send (chat.park_after)."}, func() float64 { return float64(stats().Parked) }),
	)
}

// WatchCluster exports the cluster link's counters, read at scrape time.
func (m *Metrics) WatchCluster(stats func() cluster.Stats) {
	m.reg.MustRegister(&clusterCollector{stats: stats})
}

// WatchCertificates exports, at each scrape, the expiry of every
// certificate list returns (certs.Manager.Certificates).
func (m *Metrics) WatchCertificates(list func() []certs.ServedCert) {
	m.reg.MustRegister(&certCollector{list: list})
}

// WatchACME exports the ACME order counts (certs.Manager.ACMEStats).
func (m *Metrics) WatchACME(stats func() certs.ACMEStats) {
	m.reg.MustRegister(&acmeCollector{stats: stats})
}
