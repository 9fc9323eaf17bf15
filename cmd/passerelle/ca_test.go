package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

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

// The stores themselves are exercised in the certs package (a real system
// store round trip checked by fresh processes, a Java store); here, how the
// command reports each outcome.
func TestWriteTrustResults(t *testing.T) {
	var sb strings.Builder
	writeTrustResults(&sb, []certs.TrustResult{
		{Store: "system", Outcome: certs.TrustInstalled, Detail: "/usr/local/share/ca-certificates/x.crt"},
		{Store: "nss", Outcome: certs.TrustSkipped, Detail: "certutil not found"},
		{Store: "java", Outcome: certs.TrustFailed, Detail: "failed to execute keytool: exit status 1"},
		{Store: "system", Outcome: certs.TrustNotInstalled, Detail: "/usr/local/share/ca-certificates/x.crt"},
		{Store: "system", Outcome: certs.TrustFailed, Detail: "removed /usr/local/share/ca-certificates/x.crt, but " +
			(&certs.JavaAliasLeftError{Store: "/etc/ssl/certs/java/cacerts", Alias: "debian:x.pem", StorePass: "changeit",
				Reason: "keytool was not found: set JAVA_HOME or put keytool on PATH"}).Error()},
	})
	want := "system  installed (/usr/local/share/ca-certificates/x.crt)\n" +
		"nss     skipped: certutil not found\n" +
		"java    failed: failed to execute keytool: exit status 1\n" +
		"system  not installed (/usr/local/share/ca-certificates/x.crt)\n" +
		"system  failed: removed /usr/local/share/ca-certificates/x.crt, but /etc/ssl/certs/java/cacerts still holds the CA as alias debian:x.pem " +
		"(keytool was not found: set JAVA_HOME or put keytool on PATH): remove it with: keytool -delete -keystore /etc/ssl/certs/java/cacerts -storepass changeit -alias debian:x.pem\n"
	if sb.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", sb.String(), want)
	}
}

// Every ca and cert command explains itself in --help: a one-line summary,
// a description and an example.
func TestCACertCommandsHaveHelp(t *testing.T) {
	root := newRootCmd(context.Background(), strings.NewReader(""), io.Discard, io.Discard)
	var walk func(c *cobra.Command)
	seen := 0
	walk = func(c *cobra.Command) {
		if c.Name() != "help" {
			seen++
			if strings.TrimSpace(c.Short) == "" || strings.TrimSpace(c.Long) == "" || strings.TrimSpace(c.Example) == "" {
				t.Errorf("%q: Short %q, Long %d bytes, Example %d bytes; want all three", c.CommandPath(), c.Short, len(c.Long), len(c.Example))
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	for _, name := range []string{"ca", "cert"} {
		c, _, err := root.Find([]string{name})
		if err != nil || c.Name() != name {
			t.Fatalf("no %s command: %v", name, err)
		}
		walk(c)
	}
	// ca create, show, path, install, uninstall; cert issue, inspect.
	if seen != 9 {
		t.Errorf("checked %d commands, want 9 (ca and cert with their 7 subcommands)", seen)
	}
	out, _, err := runCLI(t, "ca", "show", "--help")
	if err != nil || !strings.HasPrefix(out, "show prints where the local CA's certificate and private key are") {
		t.Fatalf("ca show --help: %v\n%s", err, out)
	}
}
