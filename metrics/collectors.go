package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/cluster"
)

// certCollector exports each served certificate's notAfter.
type certCollector struct {
	list func() []certs.ServedCert
}

var certExpiryDesc = prometheus.NewDesc(namespace+"_certificate_expiry_timestamp_seconds",
	"notAfter of each certificate served, in Unix seconds, by its first name, issuer common name and source (local, acme, files).",
	[]string{"name", "issuer", "mode"}, nil)

func (c *certCollector) Describe(ch chan<- *prometheus.Desc) { ch <- certExpiryDesc }

func (c *certCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[[3]string]bool{}
	for _, sc := range c.list() {
		key := [3]string{sc.Name, sc.Issuer, string(sc.Mode)}
		if seen[key] {
			// Two certificates for one name and issuer (a renewal
			// caught half-way): one series each would be a duplicate.
			continue
		}
		seen[key] = true
		ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, float64(sc.NotAfter.Unix()), key[:]...)
	}
}

// acmeCollector exports the ACME order counts kept by certs.Manager.
type acmeCollector struct {
	stats func() certs.ACMEStats
}

var (
	acmeOrdersDesc = prometheus.NewDesc(namespace+"_acme_certificates_total",
		"ACME certificates obtained, by kind (obtain: a name's first; renew).", []string{"kind"}, nil)
	acmeFailuresDesc = prometheus.NewDesc(namespace+"_acme_failures_total",
		"Failed ACME order attempts, by kind (obtain, renew); certmagic retries, and each attempt counts.", []string{"kind"}, nil)
)

func (c *acmeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- acmeOrdersDesc
	ch <- acmeFailuresDesc
}

func (c *acmeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(acmeOrdersDesc, prometheus.CounterValue, float64(s.Obtained), "obtain")
	ch <- prometheus.MustNewConstMetric(acmeOrdersDesc, prometheus.CounterValue, float64(s.Renewed), "renew")
	ch <- prometheus.MustNewConstMetric(acmeFailuresDesc, prometheus.CounterValue, float64(s.ObtainFailed), "obtain")
	ch <- prometheus.MustNewConstMetric(acmeFailuresDesc, prometheus.CounterValue, float64(s.RenewFailed), "renew")
}

var (
	clusterConnectedDesc = prometheus.NewDesc(namespace+"_cluster_connected",
		"1 while this node is connected to the cluster's NATS, else 0.", nil, nil)
	clusterMessagesDesc = prometheus.NewDesc(namespace+"_cluster_messages_total",
		"Chat messages sent to the other nodes (direction out) and taken from them (in).", []string{"direction"}, nil)
	clusterDroppedDesc = prometheus.NewDesc(namespace+"_cluster_dropped_total",
		"Chat messages between nodes dropped: buffer_full (for the others while the link was down), slow_subscription (NATS packs from the others that this node fell behind on), rejected (refused by the hub); on arrival, never delivered: bad_pack (a pack no node makes), too_large (over chat.max_message), reserved_prefix (starts with <passerelle:), unknown_node (from no node of the cluster).",
		[]string{"reason"}, nil)
	clusterDisconnectsDesc = prometheus.NewDesc(namespace+"_cluster_disconnects_total",
		"Losses of the connection to the cluster's NATS.", nil, nil)
	clusterDegradedDesc = prometheus.NewDesc(namespace+"_cluster_degraded",
		"1 while the bucket of nicknames and members has no majority of its replicas (nicknames are checked on this node only), else 0.", nil, nil)
	clusterRoutesRefusedDesc = prometheus.NewDesc(namespace+"_cluster_routes_refused_total",
		"Servers turned away at the route port without the cluster's credential or a route certificate (embedded cluster).", nil, nil)
)

// clusterCollector reads the cluster link's own counters at scrape time.
type clusterCollector struct{ stats func() cluster.Stats }

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- clusterConnectedDesc
	ch <- clusterMessagesDesc
	ch <- clusterDroppedDesc
	ch <- clusterDisconnectsDesc
	ch <- clusterDegradedDesc
	ch <- clusterRoutesRefusedDesc
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	connected := 0.0
	if s.Connected {
		connected = 1
	}
	ch <- prometheus.MustNewConstMetric(clusterConnectedDesc, prometheus.GaugeValue, connected)
	ch <- prometheus.MustNewConstMetric(clusterMessagesDesc, prometheus.CounterValue, float64(s.Published), "out")
	ch <- prometheus.MustNewConstMetric(clusterMessagesDesc, prometheus.CounterValue, float64(s.Received), "in")
	ch <- prometheus.MustNewConstMetric(clusterDroppedDesc, prometheus.CounterValue, float64(s.BufferDropped), "buffer_full")
	ch <- prometheus.MustNewConstMetric(clusterDroppedDesc, prometheus.CounterValue, float64(s.SlowDropped), "slow_subscription")
	ch <- prometheus.MustNewConstMetric(clusterDroppedDesc, prometheus.CounterValue, float64(s.Rejected), "rejected")
	for _, r := range cluster.DropReasons() {
		ch <- prometheus.MustNewConstMetric(clusterDroppedDesc, prometheus.CounterValue, float64(s.DroppedOnArrival[r]), r)
	}
	ch <- prometheus.MustNewConstMetric(clusterDisconnectsDesc, prometheus.CounterValue, float64(s.Disconnects))
	degraded := 0.0
	if s.Degraded {
		degraded = 1
	}
	ch <- prometheus.MustNewConstMetric(clusterDegradedDesc, prometheus.GaugeValue, degraded)
	ch <- prometheus.MustNewConstMetric(clusterRoutesRefusedDesc, prometheus.CounterValue, float64(s.RoutesRefused))
}
