package certs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testacme"
	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

// TestCertificatesListsWhatIsServed lists a local-mode and a files-mode
// certificate with the name, source, issuer and notAfter a monitor reads.
func TestCertificatesListsWhatIsServed(t *testing.T) {
	dir := t.TempDir()
	m := newTestManager(t, ManagerConfig{DataDir: t.TempDir()})
	if got := m.Certificates(); len(got) != 0 {
		t.Fatalf("before any source: %+v", got)
	}
	if _, err := m.Source(context.Background(), TLSSpec{Mode: ModeLocal}); err != nil {
		t.Fatal(err)
	}
	notAfter := time.Now().Add(72 * time.Hour).Truncate(time.Second)
	root := testpki.NewRoot(t, testpki.CAOptions{CommonName: "files root"})
	certFile, keyFile := root.Leaf(t, testpki.LeafOptions{DNSNames: []string{"files.example.org"}, NotAfter: notAfter}).WriteFiles(t, dir, "srv")
	if _, err := m.Source(context.Background(), TLSSpec{Mode: ModeFiles, CertFile: certFile, KeyFile: keyFile}); err != nil {
		t.Fatal(err)
	}
	ca, _, err := m.LocalCA()
	if err != nil {
		t.Fatal(err)
	}
	got := m.Certificates()
	if len(got) != 2 {
		t.Fatalf("Certificates() = %+v, want 2", got)
	}
	files, local := got[0], got[1]
	if files.Name != "files.example.org" || files.Mode != ModeFiles || files.Issuer != "files root" || !files.NotAfter.Equal(notAfter) {
		t.Errorf("files certificate: %+v", files)
	}
	wantIssuer := ca.cert.Subject.CommonName
	if local.Name != "localhost" || local.Mode != ModeLocal || local.Issuer != wantIssuer ||
		time.Until(local.NotAfter) < DefaultManagedLocalLifetime-time.Hour {
		t.Errorf("local certificate: %+v, want localhost, local, %q, about %s from now", local, wantIssuer, DefaultManagedLocalLifetime)
	}
}

// TestACMEStatsCountOrders counts a first ACME order and its renewal from
// an in-process Pebble, and lists the ACME certificate.
func TestACMEStatsCountOrders(t *testing.T) {
	l := newACMEListener(t)
	p := testacme.Start(t, l.port, 6*time.Second)
	m := newTestManager(t, ManagerConfig{DataDir: t.TempDir(), ACME: acmeTestConfig(p, l.port),
		RenewCheckInterval: 200 * time.Millisecond, RenewalWindowRatio: 0.5})
	l.serve(t, m)
	src, err := m.Source(context.Background(), TLSSpec{Mode: ModeACME, Names: []string{testACMEName}})
	if err != nil {
		t.Fatal(err)
	}
	l.src.Store(src)
	if got := m.ACMEStats(); got != (ACMEStats{Obtained: 1}) {
		t.Fatalf("after the first order: %+v, want one obtained", got)
	}
	list := m.Certificates()
	if len(list) != 1 || list[0].Name != testACMEName || list[0].Mode != ModeACME || list[0].Issuer == "" {
		t.Fatalf("Certificates() = %+v, want one ACME certificate for %s", list, testACMEName)
	}
	testutil.Eventually(t, "a renewal to be counted", 20*time.Second, func() bool { return m.ACMEStats().Renewed > 0 })
	if got := m.ACMEStats(); got.Obtained != 1 || got.ObtainFailed != 0 || got.RenewFailed != 0 {
		t.Errorf("after renewal: %+v", got)
	}
}

// TestACMEStatsCountFailures counts an order the CA refuses.
func TestACMEStatsCountFailures(t *testing.T) {
	port := testutil.ClosedAddr(t).Port
	p := testacme.Start(t, port, 90*24*time.Hour)
	cfg := acmeTestConfig(p, port)
	cfg.ListenHost = "127.0.0.2" // nothing answers the challenge
	m := newTestManager(t, ManagerConfig{DataDir: t.TempDir(), ACME: cfg})
	_, err := m.Source(context.Background(), TLSSpec{Mode: ModeACME, Names: []string{testACMEName}})
	var ae *ACMEError
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v, want an *ACMEError", err)
	}
	if got := m.ACMEStats(); got.ObtainFailed == 0 || got.Obtained != 0 || got.Renewed != 0 {
		t.Errorf("ACMEStats() = %+v, want failed obtains only", got)
	}
}
