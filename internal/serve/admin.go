package serve

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"slices"
	"time"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/cluster"
	"github.com/passerelle/passerelle/internal/netaddr"
	"github.com/passerelle/passerelle/metrics"
	"github.com/passerelle/passerelle/secure"
	"github.com/passerelle/passerelle/web"
)

// adminConfig is the admin listener's configuration (admin.*). It is off
// unless Address is set.
type adminConfig struct {
	// Address is where /metrics, /healthz, /readyz and /debug/pprof/ are
	// served; empty: no admin listener.
	Address string `mapstructure:"address"`
	// TLS is a listener's tls block; its mode defaults to off (plain HTTP),
	// which only a loopback address may use unless AllowInsecure.
	TLS tlsConfig `mapstructure:"tls"`
	// AllowInsecure lets a non-loopback address serve plain HTTP.
	AllowInsecure bool `mapstructure:"allow_insecure"`
}

// mode is admin.tls.mode, off when unset.
func (c adminConfig) mode() certs.TLSMode {
	if c.TLS.Mode == "" {
		return certs.ModeOff
	}
	return c.TLS.Mode
}

// validate checks the admin keys, each error naming its key; its tls block
// is checked as every listener's is.
func (c adminConfig) validate(acmeAgreed bool) []error {
	if c.Address == "" {
		return nil
	}
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := checkAddress(c.Address); err != nil {
		add("admin.address %q: %v", c.Address, err)
	} else if c.mode() == certs.ModeOff && !netaddr.IsLoopbackAddr(c.Address) && !c.AllowInsecure {
		add("admin.address %q: not a loopback address, and admin.tls.mode is off: set admin.tls.mode (local, acme or files) so that metrics and profiles travel over TLS, or admin.allow_insecure: true to serve them in plain HTTP anyway", c.Address)
	}
	t := c.TLS
	t.Mode = c.mode()
	errs = append(errs, t.validate(serviceAdmin, "admin.", acmeAgreed)...)
	return errs
}

// adminIndex is the answer to GET /: what the admin listener serves, for
// the operator who opens its address first.
const adminIndex = `passerelle admin
/metrics        Prometheus metrics (passerelle_*, Go and process)
/healthz        200 while the process answers
/readyz         200 once every listener serves with a valid certificate (and the cluster link is up), else 503 and why
/debug/pprof/   Go profiles (CPU, heap, goroutines, mutexes, traces)
`

// row is the admin listener as a row of the listener table: its tls block
// with its own default (off: plain HTTP, which validate allows on loopback
// only).
func (c adminConfig) row() listenerConfig {
	t := c.TLS
	t.normalize(certs.ModeOff)
	return listenerConfig{Address: c.Address, Service: serviceAdmin, TLS: t, addressFrom: "admin.address", key: serviceAdmin}
}

// watched is one service listener as /readyz sees it.
type watched struct {
	l   *listener
	obs *metrics.Listener
}

// adminParts is what the admin service serves: the metrics, the listeners
// /readyz watches, and the cluster link's state (nil for a single node).
type adminParts struct {
	metrics      *metrics.Metrics
	watched      []watched
	clusterStats func() cluster.Stats
}

// watchMetrics makes the metrics when the table has an admin listener:
// an observer for every other listener (build hands it to the listener's
// server), and watchers of the hub, the certificates, ACME and the cluster
// link. It runs after the addresses are bound and before the services are
// made: /readyz answers "not ready" until every accept loop runs.
func watchMetrics(set *listenerSet, svc *services, mgr *certs.Manager, cl *clusterLink) {
	if !slices.ContainsFunc(set.all, func(l *listener) bool { return l.cfg.Service == serviceAdmin }) {
		return
	}
	m := metrics.New()
	parts := &adminParts{metrics: m}
	for _, l := range set.all {
		if l.cfg.Service == serviceAdmin {
			continue
		}
		transport := metrics.TransportTLS
		if l.plain() {
			transport = metrics.TransportPlain
		}
		judges := l.cfg.TLS.ClientAuth != secure.ClientAuthNone || l.authorize != nil
		l.obs = m.Listener(l.cfg.Address, l.cfg.Service, transport, judges)
		parts.watched = append(parts.watched, watched{l: l, obs: l.obs})
	}
	svc.metrics = m
	svc.admin = parts
	if slices.ContainsFunc(set.all, func(l *listener) bool { return l.cfg.Service == serviceChat }) {
		// The hub is made now, with its observer, rather than by the
		// first chat listener's service.
		m.WatchHub(svc.hub().Stats)
	}
	m.WatchCertificates(mgr.Certificates)
	m.WatchACME(mgr.ACMEStats)
	if cl != nil && cl.node != nil {
		parts.clusterStats = cl.node.Stats
		m.WatchCluster(parts.clusterStats)
	}
}

// newAdminService serves /metrics, /healthz, /readyz and /debug/pprof/
// over HTTP(S). The admin listener runs secure's accept loop like every
// other one (handshake deadline, client certificates judged in the
// nine-word vocabulary), and hands each connection to net/http the way the
// browser paths do. It keeps a connection limit of its own, so that a
// flood of chat clients cannot lock the operator out of its metrics.
func newAdminService(s *services, l *listener) (service, error) {
	p := s.admin
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, adminIndex)
	})
	mux.Handle("GET /metrics", p.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeHealth(w, http.StatusOK, health{Status: "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		h := readiness(p.watched, p.clusterStats, time.Now())
		code := http.StatusOK
		if h.Status != "ready" {
			code = http.StatusServiceUnavailable
		}
		writeHealth(w, code, h)
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	httpd := web.NewConnServer(mux, s.cfg.Limits.HandshakeTimeout, l.log)
	return service{
		handle:     func(ctx context.Context, c *secure.Conn) { httpd.ServeConn(ctx, c) },
		closer:     httpd,
		ownLimiter: true,
	}, nil
}

// health is the JSON body of /healthz and /readyz.
type health struct {
	Status   string     `json:"status"`
	NotReady []notReady `json:"not_ready,omitempty"`
}

// notReady is one listener that keeps the process from being ready, and
// why: not_serving, no_certificate, certificate_expired or
// certificate_not_yet_valid; or the cluster link, cluster_disconnected, or
// its bucket of nicknames without a majority, cluster_degraded.
type notReady struct {
	Listener string `json:"listener"`
	Service  string `json:"service"`
	Reason   string `json:"reason"`
	Detail   string `json:"detail,omitempty"`
}

// readiness says whether every listener's accept loop runs, every TLS
// listener holds a certificate valid at now, and the cluster link, if any,
// is up.
func readiness(ws []watched, clusterStats func() cluster.Stats, now time.Time) health {
	var bad []notReady
	if clusterStats != nil {
		switch st := clusterStats(); {
		case !st.Connected:
			bad = append(bad, notReady{Listener: "cluster", Service: "cluster", Reason: "cluster_disconnected",
				Detail: "no connection to the cluster's NATS: local rooms are served, other nodes are not reached"})
		case st.Degraded:
			bad = append(bad, notReady{Listener: "cluster", Service: "cluster", Reason: "cluster_degraded",
				Detail: "the bucket of nicknames and members has no majority: nicknames are checked on this node only"})
		}
	}
	for _, w := range ws {
		nr := notReady{Listener: w.l.cfg.Address, Service: w.l.cfg.Service}
		if !w.obs.Up() {
			nr.Reason = "not_serving"
			bad = append(bad, nr)
			continue
		}
		if w.l.source == nil {
			continue
		}
		if reason, detail := certificateState(w.l.source.GetCertificate, now); reason != "" {
			nr.Reason, nr.Detail = reason, detail
			bad = append(bad, nr)
		}
	}
	if len(bad) > 0 {
		return health{Status: "not ready", NotReady: bad}
	}
	return health{Status: "ready"}
}

// certificateState asks a listener's source for the certificate a client
// sending no server name gets, and says what is wrong with it, if
// anything.
func certificateState(get func(*tls.ClientHelloInfo) (*tls.Certificate, error), now time.Time) (reason, detail string) {
	if get == nil {
		return "no_certificate", ""
	}
	c, err := get(&tls.ClientHelloInfo{})
	if err != nil || c == nil || c.Leaf == nil {
		if err == nil {
			err = errors.New("the source returned no parsed certificate")
		}
		return "no_certificate", err.Error()
	}
	switch {
	case now.After(c.Leaf.NotAfter):
		return "certificate_expired", "not after " + c.Leaf.NotAfter.UTC().Format(time.RFC3339)
	case now.Before(c.Leaf.NotBefore):
		return "certificate_not_yet_valid", "not before " + c.Leaf.NotBefore.UTC().Format(time.RFC3339)
	}
	return "", ""
}

func writeHealth(w http.ResponseWriter, code int, h health) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(h)
}
