package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
)

func newTestManager(t testing.TB, cfg ManagerConfig) *Manager {
	t.Helper()
	m, err := NewManager(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func TestLocalSourceServesAndRestartsFromStorage(t *testing.T) {
	dir := t.TempDir()
	log, logs := testutil.Logger(t, slog.LevelDebug)
	m := newTestManager(t, ManagerConfig{DataDir: dir, Logger: log})
	src, err := m.Source(context.Background(), TLSSpec{Mode: ModeLocal})
	if err != nil {
		t.Fatal(err)
	}
	ca, created, err := m.LocalCA()
	if err != nil || !created {
		t.Fatalf("LocalCA after Source: created=%v err=%v, want true (Source made it)", created, err)
	}
	if ca.CertFile() != filepath.Join(dir, "ca", "ca.pem") {
		t.Errorf("CA file %s", ca.CertFile())
	}
	if len(src.NextProtos) != 0 {
		t.Errorf("local source NextProtos = %v, want none", src.NextProtos)
	}
	addr := echoServer(t, src.GetCertificate, src.NextProtos)

	tests := []struct {
		serverName string
		wantErr    string // verification error, "" for a trusted certificate
	}{
		{"localhost", ""},
		{"127.0.0.1", ""}, // no SNI: the one certificate for every name
		{"other.test", "x509: certificate is valid for localhost, not other.test"},
	}
	var first *x509.Certificate
	for _, tt := range tests {
		leaf, err := dialLeaf(t, addr, tt.serverName, ca.Pool())
		if tt.wantErr == "" && err != nil {
			t.Errorf("%s: %v", tt.serverName, err)
		}
		if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: error %v, want %q", tt.serverName, err, tt.wantErr)
		}
		if leaf == nil {
			t.Fatalf("%s: no certificate presented", tt.serverName)
		}
		if got := leaf.NotAfter.Sub(leaf.NotBefore); got < DefaultManagedLocalLifetime || got > DefaultManagedLocalLifetime+2*time.Minute {
			t.Errorf("managed local lifetime = %s", got)
		}
		if tt.serverName == "localhost" {
			first = leaf
		}
	}
	if !strings.Contains(logs.String(), `msg="certificate ready" server_name=localhost mode=local`) {
		t.Errorf("log lacks the ready line:\n%s", logs)
	}
	// Keys in certmagic storage are private.
	keys, _ := filepath.Glob(filepath.Join(dir, "certmagic", "certificates", "*", "localhost", "localhost.key"))
	if len(keys) != 1 {
		t.Fatalf("stored keys: %v", keys)
	}
	assertMode(t, keys[0], 0o600)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// A new process on the same data folder serves the stored certificate.
	m2 := newTestManager(t, ManagerConfig{DataDir: dir})
	src2, err := m2.Source(context.Background(), TLSSpec{Names: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	_, created, _ = m2.LocalCA()
	if created {
		t.Error("restart made a new CA")
	}
	leaf, err := dialLeaf(t, echoServer(t, src2.GetCertificate, nil), "localhost", ca.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Errorf("restart served serial %x, want the stored %x", leaf.SerialNumber, first.SerialNumber)
	}
}

func TestLocalSourceRenews(t *testing.T) {
	dir := t.TempDir()
	// A lifetime so short that the certificate is inside certmagic's
	// renewal window from the start: the first maintenance tick renews it.
	m := newTestManager(t, ManagerConfig{DataDir: dir, LocalLifetime: 3 * time.Second, RenewCheckInterval: 100 * time.Millisecond})
	src, err := m.Source(context.Background(), TLSSpec{Names: []string{"renew.test"}})
	if err != nil {
		t.Fatal(err)
	}
	ca, _, _ := m.LocalCA()
	addr := echoServer(t, src.GetCertificate, nil)
	first, err := dialLeaf(t, addr, "renew.test", ca.Pool())
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "a renewed certificate", 10*time.Second, func() bool {
		leaf, err := dialLeaf(t, addr, "renew.test", ca.Pool())
		return err == nil && leaf.SerialNumber.Cmp(first.SerialNumber) != 0
	})
}

func TestSourceBadSpecs(t *testing.T) {
	dir := t.TempDir()
	m := newTestManager(t, ManagerConfig{DataDir: dir})
	if _, err := m.Source(context.Background(), TLSSpec{Mode: ModeLocal, Names: []string{"shared.test"}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec TLSSpec
		want string
	}{
		{"unknown mode", TLSSpec{Mode: "magic"}, `unknown tls.mode "magic": want local, acme, files or off`},
		{"off", TLSSpec{Mode: ModeOff}, "tls.mode off has no certificate source"},
		{"bad name", TLSSpec{Names: []string{"a b"}}, `tls.names: invalid name "a b": character ' ' not allowed in a DNS name`},
		{"e-mail name", TLSSpec{Names: []string{"me@example.test"}}, `tls.names: "me@example.test" is not a DNS name or an IP address`},
		{"acme without names", TLSSpec{Mode: ModeACME}, "tls.mode acme needs tls.names"},
		{"acme without agreement", TLSSpec{Mode: ModeACME, Names: []string{"a.test"}}, "acme.agree is not true: read the terms of service of the ACME CA at https://acme-v02.api.letsencrypt.org/directory, then set acme.agree: true"},
		{"files without files", TLSSpec{Mode: ModeFiles, CertFile: "a.pem"}, "tls.mode files needs tls.cert_file and tls.key_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Source(context.Background(), tt.spec)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestNewManagerBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  ManagerConfig
		want string
	}{
		{"no data dir", ManagerConfig{}, "certificate manager: no data folder configured (data_dir)"},
		{"bad acme url", ManagerConfig{DataDir: "x", ACME: ACMEConfig{CA: "acme.example"}}, `acme.ca "acme.example" is not an http(s) URL of an ACME directory`},
		{"bad port", ManagerConfig{DataDir: "x", ACME: ACMEConfig{TLSALPNPort: 70000}}, "acme.tls_alpn_port 70000 is not a port number"},
		{"bad ratio", ManagerConfig{DataDir: "x", RenewalWindowRatio: 1.5}, "certificate manager: renewal window ratio 1.5 out of range (0 to 1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewManager(context.Background(), tt.cfg)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestManagerRefusesBrokenCA(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "ca"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca", "ca.pem"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := newTestManager(t, ManagerConfig{DataDir: dir})
	_, err := m.Source(context.Background(), TLSSpec{})
	want := "local CA incomplete: " + filepath.Join(dir, "ca", "ca.pem") + " exists but its key " + filepath.Join(dir, "ca", "ca-key.pem") + " is missing"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
	if errors.Is(err, ErrNoCA) {
		t.Error("a broken CA reported as absent")
	}
}

// After the local CA is replaced (its folder deleted), certificates signed
// by the old one are never served again: clients trust only the new one.
func TestLocalSourceAfterNewCA(t *testing.T) {
	dir := t.TempDir()
	m := newTestManager(t, ManagerConfig{DataDir: dir})
	if _, err := m.Source(context.Background(), TLSSpec{Names: []string{"localhost"}}); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if err := os.RemoveAll(filepath.Join(dir, "ca")); err != nil {
		t.Fatal(err)
	}
	m2 := newTestManager(t, ManagerConfig{DataDir: dir})
	src, err := m2.Source(context.Background(), TLSSpec{Names: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	ca, created, _ := m2.LocalCA()
	if !created {
		t.Error("LocalCA does not report the CA that Source made")
	}
	if _, err := dialLeaf(t, echoServer(t, src.GetCertificate, nil), "localhost", ca.Pool()); err != nil {
		t.Fatalf("certificate after a new CA: %v", err)
	}
}

// Old socket clients send no server name. A local listener serves them one
// certificate naming every default name, whichever address they dialled:
// openssl, the independent peer, checks it both as localhost and as the IP.
func TestLocalSourceWithoutServerName(t *testing.T) {
	openssl := testutil.Tool(t, "openssl")
	m := newTestManager(t, ManagerConfig{DataDir: t.TempDir()})
	src, err := m.Source(context.Background(), TLSSpec{Mode: ModeLocal})
	if err != nil {
		t.Fatal(err)
	}
	ca, _, _ := m.LocalCA()
	addr := echoServer(t, src.GetCertificate, src.NextProtos)

	tests := []struct {
		name string
		args []string
	}{
		{"as in the issue", []string{"-verify_hostname", "localhost"}},
		{"localhost", []string{"-noservername", "-verify_hostname", "localhost"}},
		{"127.0.0.1", []string{"-noservername", "-verify_ip", "127.0.0.1"}},
		{"::1", []string{"-noservername", "-verify_ip", "::1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"s_client", "-connect", addr, "-CAfile", ca.CertFile(), "-verify_return_error"}, tt.args...)
			cmd := exec.Command(openssl, args...)
			cmd.Stdin = strings.NewReader("")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Verify return code: 0 (ok)") {
				t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}

	// The same certificate whatever the name: one for all of them. (Go
	// verifies the dialled IP and sends no server name for an IP.)
	leaf, err := dialLeaf(t, addr, "", ca.Pool())
	if err != nil {
		t.Fatalf("dial without a name: %v", err)
	}
	if got := strings.Join(leaf.DNSNames, ",") + " " + fmt.Sprint(leaf.IPAddresses); got != "localhost [127.0.0.1 ::1]" {
		t.Fatalf("served names %s, want localhost [127.0.0.1 ::1]", got)
	}
	for _, name := range []string{"localhost", "127.0.0.1"} {
		other, err := dialLeaf(t, addr, name, ca.Pool())
		if err != nil || other.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
			t.Fatalf("%s: serial %x, %v; want the same certificate %x", name, other.SerialNumber, err, leaf.SerialNumber)
		}
	}
}

// A data folder holding the one-name certificates of an older version (or
// of a listener that had fewer names) gets a certificate for every name at
// start, not at the next renewal.
func TestLocalSourceReplacesNarrowStoredCertificate(t *testing.T) {
	dir := t.TempDir()
	m := newTestManager(t, ManagerConfig{DataDir: dir})
	if _, err := m.Source(context.Background(), TLSSpec{Names: []string{"localhost"}}); err != nil {
		t.Fatal(err)
	}
	ca, _, _ := m.LocalCA()
	_ = m.Close()

	log, logs := testutil.Logger(t, slog.LevelInfo)
	m2 := newTestManager(t, ManagerConfig{DataDir: dir, Logger: log})
	src, err := m2.Source(context.Background(), TLSSpec{})
	if err != nil {
		t.Fatal(err)
	}
	addr := echoServer(t, src.GetCertificate, nil)
	if _, err := dialLeaf(t, addr, "127.0.0.1", ca.Pool()); err != nil {
		t.Fatalf("127.0.0.1 after restart: %v", err)
	}
	want := `msg="replacing the stored local certificate: it does not name every name" server_name=localhost names="[localhost 127.0.0.1 ::1]"`
	if !strings.Contains(logs.String(), want) {
		t.Fatalf("log lacks %s:\n%s", want, logs)
	}
}

// Two local listeners whose names start alike: the second, with more
// names, gets one certificate for all of them, which serves the first too.
func TestLocalSourcesSharingFirstName(t *testing.T) {
	m := newTestManager(t, ManagerConfig{DataDir: t.TempDir()})
	first, err := m.Source(context.Background(), TLSSpec{Names: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	second, err := m.Source(context.Background(), TLSSpec{Names: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	ca, _, _ := m.LocalCA()
	tests := []struct {
		name       string
		src        *Source
		serverName string // "": none sent, verified as 127.0.0.1
	}{
		{"first, localhost", first, "localhost"},
		{"second, localhost", second, "localhost"},
		{"second, no server name", second, ""},
	}
	for _, tt := range tests {
		if _, err := dialLeaf(t, echoServer(t, tt.src.GetCertificate, nil), tt.serverName, ca.Pool()); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}
