package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/protocol/envoie"
	"github.com/passerelle/passerelle/secure"
)

// page is what /metrics serves, without comments.
func page(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	var lines []string
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(l, "passerelle_") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// TestObserversCount feeds each observer events and checks the series they
// move, and only those.
func TestObserversCount(t *testing.T) {
	m := New()
	l := m.Listener("127.0.0.1:10000", "chat", TransportTLS, true)
	l.Opened()
	l.Opened()
	l.Closed()
	l.Refused(secure.RefusedPerAddress)
	l.Handshake(secure.HandshakeOK, secure.StatusUnknown, 2*time.Millisecond)
	l.Handshake(secure.HandshakeRefused, secure.StatusExpired, 3*time.Millisecond)
	if l.Up() {
		t.Error("listener up before Serving")
	}
	l.Serving(nil)
	if !l.Up() {
		t.Error("listener not up after Serving")
	}
	h := m.Hub()
	h.Relayed(10, 3)
	h.Relayed(5, 0)
	h.Closed(hub.ReasonSlowConsumer)
	e := m.Envoie("127.0.0.1:10001")
	e.Refused(envoie.CodeNotFound)
	e.Sent(100, true)
	e.Sent(7, false)
	m.WatchHub(func() hub.Stats { return hub.Stats{Clients: 4, Rooms: 2, Parked: 3} })
	exp := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	m.WatchCertificates(func() []certs.ServedCert {
		c := certs.ServedCert{Name: "chat.example.org", Mode: certs.ModeACME, Issuer: "R3", NotAfter: exp}
		return []certs.ServedCert{c, c} // a renewal caught half-way: one series
	})
	m.WatchACME(func() certs.ACMEStats { return certs.ACMEStats{Obtained: 1, Renewed: 2, RenewFailed: 3} })

	got := page(t, m)
	for _, want := range []string{
		`passerelle_connections_accepted_total{listener="127.0.0.1:10000",service="chat",transport="tls"} 2`,
		`passerelle_connections_open{listener="127.0.0.1:10000",service="chat",transport="tls"} 1`,
		`passerelle_connections_refused_total{listener="127.0.0.1:10000",reason="per_address",service="chat",transport="tls"} 1`,
		`passerelle_listener_up{listener="127.0.0.1:10000",service="chat",transport="tls"} 1`,
		`passerelle_handshakes_total{listener="127.0.0.1:10000",outcome="ok",service="chat"} 1`,
		`passerelle_handshakes_total{listener="127.0.0.1:10000",outcome="refused",service="chat"} 1`,
		`passerelle_handshakes_total{listener="127.0.0.1:10000",outcome="timeout",service="chat"} 0`,
		`passerelle_client_certificates_refused_total{listener="127.0.0.1:10000",service="chat",status="expired"} 1`,
		`passerelle_client_certificates_refused_total{listener="127.0.0.1:10000",service="chat",status="unknown"} 0`,
		`passerelle_handshake_duration_seconds_count{listener="127.0.0.1:10000",service="chat"} 2`,
		`passerelle_chat_messages_total 2`,
		`passerelle_chat_deliveries_total 3`,
		`passerelle_chat_relayed_bytes_total 30`,
		`passerelle_chat_clients_closed_total{reason="slow_consumer"} 1`,
		`passerelle_chat_clients_closed_total{reason="flood"} 0`,
		`passerelle_chat_clients 4`,
		`passerelle_chat_rooms 2`,
		`passerelle_chat_parked_clients 3`,
		`passerelle_envoie_refusals_total{code="not_found",listener="127.0.0.1:10001"} 1`,
		`passerelle_envoie_refusals_total{code="busy",listener="127.0.0.1:10001"} 0`,
		`passerelle_envoie_assets_sent_total{listener="127.0.0.1:10001",result="complete"} 1`,
		`passerelle_envoie_assets_sent_total{listener="127.0.0.1:10001",result="cut"} 1`,
		`passerelle_envoie_sent_bytes_total{listener="127.0.0.1:10001"} 107`,
		`passerelle_certificate_expiry_timestamp_seconds{issuer="R3",mode="acme",name="chat.example.org"} 1.798859045e+09`,
		`passerelle_acme_certificates_total{kind="obtain"} 1`,
		`passerelle_acme_certificates_total{kind="renew"} 2`,
		`passerelle_acme_failures_total{kind="obtain"} 0`,
		`passerelle_acme_failures_total{kind="renew"} 3`,
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	if n := strings.Count(got, "passerelle_certificate_expiry_timestamp_seconds{"); n != 1 {
		t.Errorf("%d expiry series, want 1", n)
	}
	if t.Failed() {
		t.Logf("page:\n%s", got)
	}
}

// TestPlainListenerHasNoHandshakeSeries: a plain listener never shakes
// hands, so it shows no handshake series at all.
func TestPlainListenerHasNoHandshakeSeries(t *testing.T) {
	m := New()
	l := m.Listener("127.0.0.1:9999", "chat", TransportPlain, false)
	l.Handshake(secure.HandshakeOK, secure.StatusUnknown, time.Millisecond)
	if got := page(t, m); strings.Contains(got, "handshake") {
		t.Errorf("plain listener has handshake series:\n%s", got)
	}
}

// TestNoClientCertificateSeriesWithoutClientAuth: a TLS listener that asks
// for no client certificate never refuses one, so it shows no
// client_certificates_refused series.
func TestNoClientCertificateSeriesWithoutClientAuth(t *testing.T) {
	m := New()
	m.Listener("127.0.0.1:10000", "chat", TransportTLS, false)
	m.Listener("127.0.0.1:10002", "chat", TransportTLS, true)
	got := page(t, m)
	if strings.Contains(got, `client_certificates_refused_total{listener="127.0.0.1:10000"`) {
		t.Errorf("a listener without client authentication has refused-certificate series:\n%s", got)
	}
	if n := strings.Count(got, `passerelle_client_certificates_refused_total{listener="127.0.0.1:10002"`); n != len(secure.Statuses) {
		t.Errorf("%d refused-certificate series for a mutual-TLS listener, want one per status (%d)", n, len(secure.Statuses))
	}
}

// TestNilMetricsGiveNilObservers: with metrics off the hub and the asset
// server get a nil interface, not a typed nil that would be called.
func TestNilMetricsGiveNilObservers(t *testing.T) {
	var m *Metrics
	if o := m.Hub(); o != nil {
		t.Errorf("Hub() = %#v, want nil", o)
	}
	if o := m.Envoie("x"); o != nil {
		t.Errorf("Envoie() = %#v, want nil", o)
	}
}

// BenchmarkHubObserverRelayed is what one chat message costs the relay
// with metrics on.
func BenchmarkHubObserverRelayed(b *testing.B) {
	o := New().Hub()
	for b.Loop() {
		o.Relayed(128, 100)
	}
}
