package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/passerelle/passerelle/certs"
)

func TestCAPathWithoutCA(t *testing.T) {
	dataDir := t.TempDir()
	out, _, err := runCLI(t, "--data-dir", dataDir, "ca", "path")
	want := "local CA: no local CA yet: run passerelle serve or passerelle ca create (looked in " + filepath.Join(dataDir, "ca") + ")"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
	if out != "" {
		t.Fatalf("stdout %q, want nothing", out)
	}
	for _, sub := range []string{"show", "uninstall"} {
		if _, _, err := runCLI(t, "--data-dir", dataDir, "ca", sub); err == nil || err.Error() != want {
			t.Fatalf("ca %s: error %v, want %q", sub, err, want)
		}
	}
}

func TestCACreateShowPath(t *testing.T) {
	dataDir := t.TempDir()
	certFile := filepath.Join(dataDir, "ca", "ca.pem")

	out, _, err := runCLI(t, "--data-dir", dataDir, "ca", "create")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "Created the local CA: ") || !strings.Contains(out, "  certificate: "+certFile+"\n") {
		t.Fatalf("first create said:\n%s", out)
	}
	before, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err = runCLI(t, "--data-dir", dataDir, "ca", "create")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "Local CA already exists: ") {
		t.Fatalf("second create said:\n%s", out)
	}
	if after, _ := os.ReadFile(certFile); string(after) != string(before) {
		t.Fatal("second create replaced the CA")
	}

	out, _, err = runCLI(t, "--data-dir", dataDir, "ca", "path")
	if err != nil || out != certFile+"\n" {
		t.Fatalf("ca path: %q, %v; want %q", out, err, certFile+"\n")
	}

	out, _, err = runCLI(t, "--data-dir", dataDir, "ca", "show", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var show struct {
		CertFile    string         `json:"cert_file"`
		KeyFile     string         `json:"key_file"`
		TrustName   string         `json:"trust_name"`
		Certificate certs.CertInfo `json:"certificate"`
	}
	if err := json.Unmarshal([]byte(out), &show); err != nil {
		t.Fatalf("ca show --json: %v\n%s", err, out)
	}
	ca, err := certs.LoadCA(filepath.Join(dataDir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	if show.CertFile != certFile || show.KeyFile != filepath.Join(dataDir, "ca", "ca-key.pem") ||
		!show.Certificate.IsCA || !show.Certificate.SelfSigned ||
		show.Certificate.SHA256Fingerprint != certs.Fingerprint(ca.Certificate()) ||
		show.TrustName != certs.TrustEntryName(certs.TrustName(dataDir), ca.Certificate()) {
		t.Fatalf("ca show --json: %+v", show)
	}

	out, _, err = runCLI(t, "--data-dir", dataDir, "ca", "show")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"  Certificate:    " + certFile + "\n", "  CA:             yes (max path length 0)\n",
		"  SHA-256:        " + certs.Fingerprint(ca.Certificate()) + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("ca show lacks %q:\n%s", want, out)
		}
	}
}

func TestCAInstallReportsSkippedStores(t *testing.T) {
	dataDir := t.TempDir()
	t.Setenv("JAVA_HOME", "")
	out, _, err := runCLI(t, "--data-dir", dataDir, "ca", "install", "--store", "java")
	if err == nil || err.Error() != "the local CA is in no trust store: see the reasons above" {
		t.Fatalf("error %v", err)
	}
	// install creates the CA when there is none, and says so.
	if !strings.HasPrefix(out, "Created the local CA "+filepath.Join(dataDir, "ca", "ca.pem")+"\n") ||
		!strings.Contains(out, "\njava    skipped: JAVA_HOME is not set") {
		t.Fatalf("output:\n%s", out)
	}

	_, _, err = runCLI(t, "--data-dir", dataDir, "ca", "install", "--store", "keychain")
	if err == nil || err.Error() != `unknown trust store "keychain": want system, nss or java` {
		t.Fatalf("bad store: %v", err)
	}
}

// The system store round trip through the command; the library test covers
// the details (a fresh Go process, repeated installs).
func TestCAInstallUninstallSystem(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("not root on Linux: installing into the system store needs root")
	}
	if _, err := exec.LookPath("update-ca-certificates"); err != nil {
		t.Skip("update-ca-certificates not installed: no Debian-style system store here")
	}
	dataDir, work := t.TempDir(), t.TempDir()
	if _, _, err := runCLI(t, "--data-dir", dataDir, "cert", "issue", "localhost", "--out", work); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _, _ = runCLI(t, "--data-dir", dataDir, "ca", "uninstall", "--store", "system") })
	ca, err := certs.LoadCA(filepath.Join(dataDir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	anchor := "/usr/local/share/ca-certificates/" + certs.TrustEntryName(certs.TrustName(dataDir), ca.Certificate()) + ".crt"
	verify := func() bool {
		return exec.Command("openssl", "verify", "-verify_hostname", "localhost", filepath.Join(work, "localhost.crt")).Run() == nil
	}
	if verify() {
		t.Fatal("trusted before install")
	}

	out, _, err := runCLI(t, "--data-dir", dataDir, "ca", "install", "--store", "system")
	if err != nil || out != "system  installed ("+anchor+")\n" {
		t.Fatalf("install: %v\n%s", err, out)
	}
	if !verify() {
		t.Fatal("openssl does not trust the issued certificate after install")
	}
	out, _, err = runCLI(t, "--data-dir", dataDir, "ca", "uninstall", "--store", "system")
	if err != nil || out != "system  removed ("+anchor+")\n" {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	if verify() {
		t.Fatal("openssl still trusts the issued certificate after uninstall")
	}
}
