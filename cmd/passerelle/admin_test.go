package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/protocol/envoie"
	"github.com/passerelle/passerelle/secure"
)

var adminLine = regexp.MustCompile(`(?m)^passerelle: admin on (\S+) \((https?)\)`)

// adminURL is the base URL of a running serve's admin listener.
func adminURL(t *testing.T, s *served) string {
	t.Helper()
	m := adminLine.FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("serve printed no admin line:\n%s", s.out)
	}
	return m[2] + "://" + m[1]
}

// scrape reads /metrics with Prometheus's own text parser.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the value of the one series of family name whose labels include
// labels (name=value pairs); a missing series fails the test.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	var found []float64
	for _, m := range f.Metric {
		if hasLabels(m, labels) {
			switch {
			case m.Counter != nil:
				found = append(found, m.Counter.GetValue())
			case m.Gauge != nil:
				found = append(found, m.Gauge.GetValue())
			case m.Histogram != nil:
				found = append(found, float64(m.Histogram.GetSampleCount()))
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d series, want 1", name, labels, len(found))
	}
	return found[0]
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		ok := false
		for _, lp := range m.Label {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// delta is one expected change of a series between two scrapes.
type delta struct {
	name   string
	labels []string
	by     float64
}

func checkDeltas(t *testing.T, before, after map[string]*dto.MetricFamily, want []delta) {
	t.Helper()
	for _, d := range want {
		if got := value(t, after, d.name, d.labels...) - value(t, before, d.name, d.labels...); got != d.by {
			t.Errorf("%s%v moved by %g, want %g", d.name, d.labels, got, d.by)
		}
	}
}

// hostile marks everything a client chooses in the test: no label value
// may ever contain it.
const hostile = "HOSTILE"

// TestAdminMetricsCountTraffic drives real traffic through a real serve
// (a chat exchange, a slow receiver dropped, a refused client certificate,
// ENVOIE refusals, a download, hostile nicknames, rooms and paths) and
// checks that /metrics moved by exactly what happened, that the log says
// the same words as the labels, and that no label holds a client's words
// or address.
func TestAdminMetricsCountTraffic(t *testing.T) {
	dir := t.TempDir()
	dataDir := t.TempDir()
	clientCA := testpki.NewRoot(t, testpki.CAOptions{CommonName: "client root"})
	clientCAFile := clientCA.WriteCert(t, dir, "clients.pem")
	stranger := testpki.NewRoot(t, testpki.CAOptions{CommonName: "stranger root"}).
		Leaf(t, testpki.LeafOptions{Client: true, CommonName: hostile + "-cn"}).TLS()
	config := fmt.Sprintf(`data_dir: %s
chat:
  flood_rate: 0
  max_message: 65536
  queue_bytes: 65536
  slow_receiver_timeout: 1s
listeners:
  - address: 127.0.0.1:0
    service: chat
  - address: 127.0.0.1:0
    service: envoie
  - address: localhost:0
    service: chat
    tls:
      client_auth: require
      client_ca_file: %s
admin:
  address: 127.0.0.1:0
`, dataDir, clientCAFile)
	s := startServeConfig(t, config, 3)
	base := adminURL(t, s)
	pool, _ := caPool(t, dataDir)
	chatAddr, mtlsAddr, envoieAddr := s.addrs["chat"][0], s.addrs["chat"][1], s.addrs["envoie"][0]
	chat := []string{"listener", "127.0.0.1:0", "service", "chat"}
	var clientAddrs []string
	dial := func() net.Conn {
		c := dialTLS(t, chatAddr, "localhost", pool)
		clientAddrs = append(clientAddrs, c.LocalAddr().String())
		return c
	}

	s0 := scrape(t, base)
	// A chat exchange: two clients, one message.
	a, b := dial(), dial()
	ping(t, a)
	ping(t, b)
	io.WriteString(a, "hello\x00")
	if got := readFrames(t, b, 1); got[0] != "hello\x00" {
		t.Fatalf("b got %q", got)
	}
	s1 := scrape(t, base)
	checkDeltas(t, s0, s1, []delta{
		{"passerelle_connections_accepted_total", chat, 2},
		{"passerelle_connections_open", chat, 2},
		{"passerelle_handshakes_total", append(chat, "outcome", "ok"), 2},
		{"passerelle_handshake_duration_seconds", chat, 2},
		{"passerelle_chat_messages_total", nil, 1},
		{"passerelle_chat_deliveries_total", nil, 1},
		{"passerelle_chat_relayed_bytes_total", nil, 6},
		{"passerelle_chat_clients", nil, 2},
		{"passerelle_chat_rooms", nil, 1},
	})

	// A slow receiver: it joins a room and never reads; the sender's
	// messages fill its queue and the hub drops it.
	slow, sender := dial(), dial()
	for _, c := range []net.Conn{slow, sender} {
		io.WriteString(c, `<passerelle:join room="`+hostile+`-room"/>`+"\x00")
		readFrames(t, c, 1)
	}
	io.WriteString(sender, `<passerelle:nick name="`+hostile+`nick"/>`+"\x00")
	readFrames(t, sender, 1)
	msg := append(bytes.Repeat([]byte("x"), 32<<10), 0)
	sent := 0
	for ; sent < 4000; sent++ {
		if sent%50 == 0 && sent > 0 {
			ping(t, sender)
			if value(t, scrape(t, base), "passerelle_chat_clients_closed_total", "reason", "slow_consumer") > 0 {
				break
			}
		}
		if _, err := sender.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	ping(t, sender) // every message sent has been relayed
	s2 := scrape(t, base)
	checkDeltas(t, s1, s2, []delta{
		{"passerelle_chat_clients_closed_total", []string{"reason", "slow_consumer"}, 1},
		{"passerelle_chat_clients_closed_total", []string{"reason", "flood"}, 0},
		{"passerelle_chat_messages_total", nil, float64(sent)},
		{"passerelle_connections_accepted_total", chat, 2},
	})
	testutil.EventuallyContains(t, s.errOut, fmt.Sprintf(`msg="chat client closed" listener=127.0.0.1:0 service=chat remote_addr=%s reason=slow_consumer`, slow.LocalAddr()), waitTimeout)

	// A client certificate from a CA the listener does not trust.
	mtls := []string{"listener", "localhost:0", "service", "chat"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := secure.Dial(ctx, mtlsAddr, secure.ClientConfig{ServerName: "localhost", RootCAs: pool, Certificates: []tls.Certificate{stranger}})
	if err != nil {
		t.Fatal(err)
	}
	clientAddrs = append(clientAddrs, rc.LocalAddr().String())
	rc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := rc.Read(make([]byte, 1)); err == nil {
		t.Fatal("a client with a stranger's certificate was let in")
	}
	rc.Close()
	testutil.EventuallyContains(t, s.errOut, fmt.Sprintf(`msg="client refused" listener=localhost:0 service=chat remote_addr=%s status=untrustedSigners`, rc.LocalAddr()), waitTimeout)
	s3 := scrape(t, base)
	checkDeltas(t, s2, s3, []delta{
		{"passerelle_client_certificates_refused_total", append(mtls, "status", "untrustedSigners"), 1},
		{"passerelle_handshakes_total", append(mtls, "outcome", "refused"), 1},
		{"passerelle_handshakes_total", append(mtls, "outcome", "ok"), 0},
		{"passerelle_connections_accepted_total", mtls, 1},
	})
	// The chat listener asks for no client certificate: it has no
	// refused-certificate series, not even at zero.
	for _, m := range s3["passerelle_client_certificates_refused_total"].GetMetric() {
		if hasLabels(m, chat) {
			t.Errorf("a listener without client authentication has the series %v", m.Label)
		}
	}

	// ENVOIE: two refusals (one a hostile path) and one download.
	envoieL := []string{"listener", "127.0.0.1:0"}
	get := func(name string) (int, error) {
		c := dialTLS(t, envoieAddr, "localhost", pool)
		clientAddrs = append(clientAddrs, c.LocalAddr().String())
		var buf bytes.Buffer
		err := envoie.NewClient(c).Get(ctx, name, &buf, nil)
		return buf.Len(), err
	}
	for _, name := range []string{hostile + "-missing.txt", "../" + hostile + "/x"} {
		var re *envoie.RemoteError
		if _, err := get(name); !errors.As(err, &re) {
			t.Fatalf("get %q: %v, want a refusal", name, err)
		}
	}
	n, err := get("bienvenue.txt")
	if err != nil {
		t.Fatal(err)
	}
	// The server counts a transfer once its last byte is written, which
	// may be after the client has read it.
	testutil.Eventually(t, "the download to be counted", waitTimeout, func() bool {
		return value(t, scrape(t, base), "passerelle_envoie_assets_sent_total", append(envoieL, "result", "complete")...) > 0
	})
	s4 := scrape(t, base)
	checkDeltas(t, s3, s4, []delta{
		{"passerelle_envoie_refusals_total", append(envoieL, "code", "not_found"), 1},
		{"passerelle_envoie_refusals_total", append(envoieL, "code", "bad_name"), 1},
		{"passerelle_envoie_assets_sent_total", append(envoieL, "result", "complete"), 1},
		{"passerelle_envoie_sent_bytes_total", envoieL, float64(n)},
		{"passerelle_connections_accepted_total", []string{"listener", "127.0.0.1:0", "service", "envoie"}, 3},
	})
	testutil.EventuallyContains(t, s.errOut, `command=ENVOIE name=`+hostile+`-missing.txt code=not_found`, waitTimeout)

	// The certificate the listeners serve, and the ACME counters at zero.
	if v := value(t, s4, "passerelle_certificate_expiry_timestamp_seconds", "name", "localhost", "mode", "local"); v < float64(time.Now().Unix()) {
		t.Errorf("certificate expiry %g is in the past", v)
	}
	if v := value(t, s4, "passerelle_acme_failures_total", "kind", "renew"); v != 0 {
		t.Errorf("acme renew failures %g, want 0", v)
	}

	// No label holds what a client chose, nor a client's address.
	for name, f := range s4 {
		for _, m := range f.Metric {
			for _, lp := range m.Label {
				v := lp.GetValue()
				if strings.Contains(strings.ToLower(v), strings.ToLower(hostile)) {
					t.Errorf("%s has label %s=%q, taken from client input", name, lp.GetName(), v)
				}
				for _, ca := range clientAddrs {
					host, port, _ := net.SplitHostPort(ca)
					if strings.Contains(v, ca) || strings.Contains(v, ":"+port) && port != "0" || v == host && lp.GetName() != "name" {
						t.Errorf("%s has label %s=%q, a client's address (%s)", name, lp.GetName(), v, ca)
					}
				}
			}
		}
	}

	// Every chat connection closed: nothing stays open.
	for _, c := range []net.Conn{a, b, slow, sender} {
		c.Close()
	}
	testutil.Eventually(t, "chat connections to close", waitTimeout, func() bool {
		return value(t, scrape(t, base), "passerelle_connections_open", chat...) == 0
	})
	s5 := scrape(t, base)
	checkDeltas(t, s4, s5, []delta{
		{"passerelle_chat_clients_closed_total", []string{"reason", "client_closed"}, 3},
		{"passerelle_chat_clients", nil, -3},
	})
}

// TestAdminHealthAndProfiles checks /healthz, /readyz and /debug/pprof/ on
// a running serve, and that the service ports answer none of them.
func TestAdminHealthAndProfiles(t *testing.T) {
	dataDir := t.TempDir()
	s := startServe(t, dataDir, "--admin", "127.0.0.1:0")
	base := adminURL(t, s)
	for _, c := range []struct {
		path, body string
		code       int
	}{
		{"/healthz", `{"status":"ok"}`, 200},
		{"/readyz", `{"status":"ready"}`, 200},
	} {
		code, body := testutil.HTTPGet(t, base+c.path)
		if code != c.code || strings.TrimSpace(body) != c.body {
			t.Errorf("GET %s: %d %s, want %d %s", c.path, code, body, c.code, c.body)
		}
	}
	// The address alone shows what is there.
	if code, body := testutil.HTTPGet(t, base+"/"); code != 200 || !strings.HasPrefix(body, "passerelle admin\n/metrics ") || !strings.Contains(body, "\n/debug/pprof/   Go profiles") {
		t.Errorf("GET /: %d %q", code, body)
	}
	if code, _ := testutil.HTTPGet(t, base+"/nothing"); code != 404 {
		t.Errorf("GET /nothing: %d, want 404", code)
	}
	if code, body := testutil.HTTPGet(t, base+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("GET /debug/pprof/: %d %.200s", code, body)
	}
	if code, body := testutil.HTTPGet(t, base+"/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("GET /debug/pprof/goroutine: %d %.200s", code, body)
	}
	// The admin pages exist only on the admin listener: a service port
	// answers browsers, but not with profiles.
	pool, _ := caPool(t, dataDir)
	c := dialTLS(t, s.addrs["chat"][0], "localhost", pool)
	io.WriteString(c, "GET /debug/pprof/ HTTP/1.0\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, _ := io.ReadAll(c); !bytes.HasPrefix(b, []byte("HTTP/1.0 404 Not Found\r\n")) || bytes.Contains(b, []byte("goroutine")) {
		t.Errorf("the chat port answered /debug/pprof/ with %q, want 404", b)
	}
}

// TestAdminConfigErrors feeds serve bad admin settings and checks the exact
// message the user reads; nothing is bound.
func TestAdminConfigErrors(t *testing.T) {
	insecure := `admin.address %q: not a loopback address, and admin.tls.mode is off: set admin.tls.mode (local, acme or files) so that metrics and profiles travel over TLS, or admin.allow_insecure: true to serve them in plain HTTP anyway`
	tests := []struct {
		name string
		args []string
		yaml string
		want string
	}{
		{"every interface by flag", []string{"--admin", ":10080"}, "", fmt.Sprintf(insecure, ":10080")},
		{"public address", nil, "admin: {address: 0.0.0.0:10080}", fmt.Sprintf(insecure, "0.0.0.0:10080")},
		{"host name", nil, "admin: {address: \"metrics.example.org:10080\"}", fmt.Sprintf(insecure, "metrics.example.org:10080")},
		{"bad address", []string{"--admin", "10080"}, "", `admin.address "10080": want host:port, such as 127.0.0.1:10000 or :10000`},
		{"unknown mode", nil, "admin: {address: 127.0.0.1:0, tls: {mode: sometimes}}", `line 1: admin.tls.mode: "sometimes": want local, acme, files or off`},
		{"client auth on plain", nil, "admin: {address: 127.0.0.1:0, tls: {client_auth: require, client_ca_file: ca.pem}}", `admin.tls.client_auth "require": needs TLS (admin.tls.mode is off)`},
		{"require without CA", nil, "admin: {address: 127.0.0.1:0, tls: {mode: local, client_auth: require}}", `admin.tls.client_auth require: set admin.tls.client_ca_file to the CA that issues your clients' certificates`},
		{"files without key", nil, "admin: {address: 127.0.0.1:0, tls: {mode: files, cert_file: a.pem}}", `admin.tls: files mode needs both cert_file and key_file`},
		{"unknown key", nil, "admin: {adress: 127.0.0.1:0}", `admin.adress`},
		{"acme without agreement", nil, "admin: {address: 127.0.0.1:0, tls: {mode: acme, names: [metrics.example.org]}}", `admin.tls.mode acme: set acme.agree: true to accept the ACME CA's terms of service`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"--data-dir", dir}
			if tt.yaml != "" {
				file := writeConfig(t, dir, tt.yaml+"\n")
				args = append(args, "--config", file)
			}
			args = append(append(args, "serve", "--chat-address", "127.0.0.1:0", "--assets-address", "127.0.0.1:0"), tt.args...)
			_, _, err := runCLI(t, args...)
			if err == nil {
				t.Fatalf("serve accepted the configuration; want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

// TestAdminOverTLSWithClientCertificates serves the admin listener over
// TLS from the local CA, requiring client certificates from the operator's
// own CA: a client with one reads /metrics, one without is refused during
// the handshake.
func TestAdminOverTLSWithClientCertificates(t *testing.T) {
	dir := t.TempDir()
	dataDir := t.TempDir()
	clientCA := testpki.NewRoot(t, testpki.CAOptions{CommonName: "operators"})
	clientCAFile := clientCA.WriteCert(t, dir, "operators.pem")
	prometheus := clientCA.Leaf(t, testpki.LeafOptions{Client: true, CommonName: "prometheus"}).TLS()
	config := fmt.Sprintf(`data_dir: %s
listeners:
  - address: 127.0.0.1:0
    service: chat
admin:
  address: 127.0.0.1:0
  tls:
    mode: local
    client_auth: require
    client_ca_file: %s
`, dataDir, clientCAFile)
	s := startServeConfig(t, config, 1)
	base := adminURL(t, s)
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("admin URL %s, want https", base)
	}
	pool, _ := caPool(t, dataDir)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: certs}}}
	}
	resp, err := client(prometheus).Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("passerelle_connections_accepted_total")) {
		t.Fatalf("GET /metrics with a client certificate: %s %.200s", resp.Status, b)
	}
	if _, err := client().Get(base + "/metrics"); err == nil {
		t.Fatal("GET /metrics without a client certificate succeeded")
	}
	testutil.EventuallyContains(t, s.errOut, `msg="client refused" listener=127.0.0.1:0 service=admin`, waitTimeout)
}

// TestAdminNotReadyWithExpiredCertificate: a listener serving an expired
// certificate (files mode, which serves what the operator put there) keeps
// the process out of rotation, and /readyz says which and until when.
func TestAdminNotReadyWithExpiredCertificate(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, testpki.CAOptions{CommonName: "server root"})
	notAfter := time.Now().Add(-time.Hour).Truncate(time.Second)
	certFile, keyFile := root.Leaf(t, testpki.LeafOptions{NotBefore: notAfter.Add(-24 * time.Hour), NotAfter: notAfter}).WriteFiles(t, dir, "old")
	config := fmt.Sprintf(`data_dir: %s
listeners:
  - address: 127.0.0.1:0
    service: chat
    tls: {mode: files, cert_file: %s, key_file: %s}
  - address: 127.0.0.1:0
    service: chat
    tls: {mode: "off"}
admin:
  address: 127.0.0.1:0
`, t.TempDir(), certFile, keyFile)
	s := startServeConfig(t, config, 2)
	base := adminURL(t, s)
	code, body := testutil.HTTPGet(t, base+"/readyz")
	want := fmt.Sprintf(`{"status":"not ready","not_ready":[{"listener":"127.0.0.1:0","service":"chat","reason":"certificate_expired","detail":"not after %s"}]}`,
		notAfter.UTC().Format(time.RFC3339))
	if code != http.StatusServiceUnavailable || strings.TrimSpace(body) != want {
		t.Fatalf("/readyz: %d %s\nwant 503 %s", code, body, want)
	}
	fams := scrape(t, base)
	if v := value(t, fams, "passerelle_certificate_expiry_timestamp_seconds", "mode", "files", "issuer", "server root"); v != float64(notAfter.Unix()) {
		t.Errorf("expiry %g, want %d", v, notAfter.Unix())
	}
	if v := value(t, fams, "passerelle_connections_accepted_total", "transport", "plain"); v != 0 {
		t.Errorf("plain listener accepted %g", v)
	}
}
