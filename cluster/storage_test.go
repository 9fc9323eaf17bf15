package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/internal/testacme"
	"github.com/passerelle/passerelle/internal/testutil"
)

func TestCertStorage(t *testing.T) {
	ns := startNATS(t, 0)
	a := startNode(t, Config{NATS: []string{natsURL(ns)}}, hub.Config{})
	b := startNode(t, Config{NATS: []string{natsURL(ns)}}, hub.Config{})
	sa, sb := a.node.CertStorage(), b.node.CertStorage()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	// What one node stores, the other reads.
	for _, k := range []string{"certificates/ca/chat.example/chat.example.crt", "certificates/ca/chat.example/chat.example.key", "users/ops@example.org/ops.json"} {
		if err := sa.Store(ctx, k, []byte("value of "+k)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := sb.Load(ctx, "users/ops@example.org/ops.json")
	if err != nil || string(got) != "value of users/ops@example.org/ops.json" {
		t.Fatalf("Load = %q, %v", got, err)
	}
	if _, err := sb.Load(ctx, "nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing key: %v, want fs.ErrNotExist", err)
	}
	if !sb.Exists(ctx, "certificates/ca") || sb.Exists(ctx, "certificates/c") {
		t.Fatal("Exists wrong for a directory")
	}
	if info, err := sb.Stat(ctx, "certificates/ca/chat.example/chat.example.crt"); err != nil || !info.IsTerminal || info.Size != int64(len("value of certificates/ca/chat.example/chat.example.crt")) {
		t.Fatalf("Stat = %+v, %v", info, err)
	}
	list, err := sb.List(ctx, "certificates", false)
	if err != nil || !slices.Equal(list, []string{"certificates/ca"}) {
		t.Fatalf("List = %q, %v", list, err)
	}
	list, err = sb.List(ctx, "certificates", true)
	if err != nil || !slices.Equal(list, []string{"certificates/ca/chat.example/chat.example.crt", "certificates/ca/chat.example/chat.example.key"}) {
		t.Fatalf("List recursive = %q, %v", list, err)
	}
	if err := sb.Delete(ctx, "certificates/ca/chat.example"); err != nil {
		t.Fatal(err)
	}
	if sa.Exists(ctx, "certificates/ca/chat.example/chat.example.key") || !sa.Exists(ctx, "users/ops@example.org/ops.json") {
		t.Fatal("Delete removed the wrong keys")
	}

	// A lock is held by one node at a time.
	var holders, most atomic.Int32
	var wg sync.WaitGroup
	for _, s := range []*CertStorage{sa, sb, sa, sb} {
		wg.Go(func() {
			if err := s.Lock(ctx, "issue_cert_chat.example"); err != nil {
				t.Error(err)
				return
			}
			n := holders.Add(1)
			if n > most.Load() {
				most.Store(n)
			}
			time.Sleep(50 * time.Millisecond)
			holders.Add(-1)
			if err := s.Unlock(ctx, "issue_cert_chat.example"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d holders at once", most.Load())
	}
	// A lock is not stolen while held, and waiting for it honours ctx.
	if err := sa.Lock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if err := sb.Lock(short, "x"); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock while held elsewhere: %v", err)
	}
	if err := sa.Unlock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
}

// TestACMEAcrossNodes gets a certificate from an in-process Pebble on two
// nodes sharing the NATS storage at once: one order, both serve it.
func TestACMEAcrossNodes(t *testing.T) {
	ns := startNATS(t, 0)
	a := startNode(t, Config{NATS: []string{natsURL(ns)}}, hub.Config{})
	b := startNode(t, Config{NATS: []string{natsURL(ns)}}, hub.Config{})
	port := freePorts(t, 1)[0]
	p := testacme.Start(t, port, 90*24*time.Hour)
	acme := certs.ACMEConfig{CA: p.DirectoryURL(), Email: "ops@passerelle.test", Agree: true, CARoot: p.HTTPSRootFile(),
		TLSALPNPort: port, ListenHost: "127.0.0.1"}
	var logs []*testutil.Buffer
	var sources []*certs.Source
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range []*testNode{a, b} {
		logger, buf := testutil.Logger(t, slog.LevelDebug)
		logs = append(logs, buf)
		m, err := certs.NewManager(context.Background(), certs.ManagerConfig{DataDir: t.TempDir(), Logger: logger, ACME: acme, Storage: n.node.CertStorage()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			src, err := m.Source(ctx, certs.TLSSpec{Mode: certs.ModeACME, Names: []string{testacme.Name}})
			if err != nil {
				t.Errorf("Source: %v", err)
				return
			}
			mu.Lock()
			sources = append(sources, src)
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.Fatalf("logs:\n%s\n---\n%s", logs[0], logs[1])
	}
	obtained := 0
	for _, l := range logs {
		obtained += strings.Count(l.String(), "certificate obtained successfully")
	}
	if obtained != 1 {
		t.Fatalf("%d orders, want 1; logs:\n%s\n---\n%s", obtained, logs[0], logs[1])
	}
	// Both nodes serve the same certificate.
	var serials []string
	for _, src := range sources {
		c, err := src.GetCertificate(&tls.ClientHelloInfo{ServerName: testacme.Name})
		if err != nil || c == nil || len(c.Certificate) == 0 {
			t.Fatalf("GetCertificate: %v", err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, leaf.SerialNumber.String())
	}
	if serials[0] != serials[1] {
		t.Fatalf("serials %v differ", serials)
	}
}
