package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/cluster"
	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/spf13/viper"
)

const waitTimeout = 10 * time.Second

// TestAdminReadyOnlyOnceListenersServe follows serve's own steps: with the
// addresses bound but no accept loop running yet, /readyz answers 503 and
// names every listener; once they serve, 200.
func TestAdminReadyOnlyOnceListenersServe(t *testing.T) {
	t.Setenv("GOGC", "100") // leaves the test binary's collector alone
	v := viper.New()
	v.Set("data_dir", t.TempDir())
	v.Set("serve.chat_address", "127.0.0.1:0")
	v.Set("serve.assets_address", "127.0.0.1:0")
	v.Set("serve.plain_address", "127.0.0.1:0")
	v.Set("admin.address", "127.0.0.1:0")
	cfg, err := Load(v)
	if err != nil {
		t.Fatal(err)
	}
	log, _ := testutil.Logger(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out testutil.Buffer
	s, err := New(ctx, cfg, &out, log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	// The admin listener is the table's first row, built like the others.
	admin, rest := s.set.all[0], s.set.all[1:]
	if admin.cfg.Service != serviceAdmin || admin.srv == nil || admin.srv.Config.Limiter != nil || !admin.srv.Config.Plain {
		t.Fatalf("first row: %+v", admin.cfg)
	}
	go admin.serve(ctx)
	base := "http://" + admin.ln.Addr().String()

	code, body := testutil.HTTPGet(t, base+"/readyz")
	var h health
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	want := health{Status: "not ready", NotReady: []notReady{
		{Listener: "127.0.0.1:0", Service: "chat", Reason: "not_serving"},
		{Listener: "127.0.0.1:0", Service: "envoie", Reason: "not_serving"},
		{Listener: "127.0.0.1:0", Service: "chat", Reason: "not_serving"},
	}}
	if code != http.StatusServiceUnavailable || fmt.Sprint(h) != fmt.Sprint(want) {
		t.Fatalf("/readyz before the listeners serve: %d %+v, want 503 %+v", code, h, want)
	}
	if code, _ := testutil.HTTPGet(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz before the listeners serve: %d, want 200: the process answers", code)
	}

	for _, l := range rest {
		go l.serve(ctx)
	}
	testutil.Eventually(t, "/readyz to answer 200", waitTimeout, func() bool {
		code, _ := testutil.HTTPGet(t, base+"/readyz")
		return code == http.StatusOK
	})
}

// TestAdminAddressesAccepted lists what the admin check lets through.
func TestAdminAddressesAccepted(t *testing.T) {
	for _, c := range []adminConfig{
		{},
		{Address: "127.0.0.1:10080"},
		{Address: "[::1]:10080"},
		{Address: "localhost:10080"},
		{Address: "0.0.0.0:10080", AllowInsecure: true},
		{Address: ":10080", TLS: tlsConfig{Mode: certs.ModeLocal}},
		{Address: "0.0.0.0:10080", TLS: tlsConfig{Mode: certs.ModeFiles, CertFile: "a.pem", KeyFile: "a.key"}},
	} {
		if errs := c.validate(false); len(errs) > 0 {
			t.Errorf("%+v: %v", c, errs)
		}
	}
}

// TestReadinessClusterLink: a node whose cluster link is down is not ready,
// and says why.
func TestReadinessClusterLink(t *testing.T) {
	down := func() cluster.Stats { return cluster.Stats{Connected: false} }
	up := func() cluster.Stats { return cluster.Stats{Connected: true} }
	h := readiness(nil, down, time.Now())
	if h.Status != "not ready" || len(h.NotReady) != 1 || h.NotReady[0].Reason != "cluster_disconnected" || h.NotReady[0].Listener != "cluster" {
		t.Errorf("link down: %+v", h)
	}
	if h := readiness(nil, up, time.Now()); h.Status != "ready" {
		t.Errorf("link up: %+v", h)
	}
	if h := readiness(nil, nil, time.Now()); h.Status != "ready" {
		t.Errorf("single node: %+v", h)
	}
}
