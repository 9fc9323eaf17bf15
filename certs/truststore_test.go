package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// trustProbeEnv makes TestTrustProbe, run in a child process, verify the
// certificate in the named file against the system pool. A new process is
// needed because x509.SystemCertPool is loaded once per process.
const trustProbeEnv = "PASSERELLE_TRUST_PROBE_CERT"

func TestTrustProbe(t *testing.T) {
	path := os.Getenv(trustProbeEnv)
	if path == "" {
		return // only meaningful as the child of TestTrustSystemStore
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := ParseCertsPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
		fmt.Println("PROBE untrusted:", err)
		return
	}
	fmt.Println("PROBE trusted")
}

// probeSystemTrust asks two fresh processes whether the system store trusts
// the leaf: openssl with its default store, and this test binary through
// x509.SystemCertPool.
func probeSystemTrust(t *testing.T, leafFile string) (openssl, goPool bool) {
	t.Helper()
	err := exec.Command("openssl", "verify", leafFile).Run()
	openssl = err == nil
	cmd := exec.Command(os.Args[0], "-test.run=^TestTrustProbe$", "-test.count=1")
	cmd.Env = append(os.Environ(), trustProbeEnv+"="+leafFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("probe process: %v\n%s", err, out)
	}
	switch {
	case strings.Contains(string(out), "PROBE trusted"):
		goPool = true
	case strings.Contains(string(out), "PROBE untrusted"):
	default:
		t.Fatalf("probe process said nothing useful:\n%s", out)
	}
	return openssl, goPool
}

func newTrustFixture(t *testing.T) (dataDir string, ca *CA, leafFile string) {
	t.Helper()
	dataDir = t.TempDir()
	ca, err := CreateCA(CADir(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(IssueRequest{Names: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	leafFile = filepath.Join(dataDir, "leaf.pem")
	if err := os.WriteFile(leafFile, leaf.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dataDir, ca, leafFile
}

func TestTrustSystemStore(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the system store round trip is checked on Linux (update-ca-certificates)")
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: installing into the system store needs root (/usr/local/share/ca-certificates)")
	}
	if _, err := exec.LookPath("update-ca-certificates"); err != nil {
		t.Skip("update-ca-certificates not installed: no Debian-style system store here")
	}
	skipSystemTrustHooks(t)
	dataDir, ca, leafFile := newTrustFixture(t)
	cfg := TrustConfig{Name: TrustName(dataDir), Stores: []string{StoreSystem}}
	ctx := context.Background()
	t.Cleanup(func() { _, _ = UninstallTrust(context.Background(), ca.CertFile(), cfg) })

	wantFile := "/usr/local/share/ca-certificates/" + TrustEntryName(cfg.Name, ca.Certificate()) + ".crt"
	if o, g := probeSystemTrust(t, leafFile); o || g {
		t.Fatalf("before install: openssl trusts %v, Go trusts %v; want neither", o, g)
	}

	steps := []struct {
		name    string
		install bool
		want    TrustOutcome
		trusted bool
	}{
		{"install", true, TrustInstalled, true},
		{"install again", true, TrustAlreadyInstalled, true},
		{"uninstall", false, TrustRemoved, false},
		{"uninstall again", false, TrustNotInstalled, false},
	}
	for _, s := range steps {
		run := UninstallTrust
		if s.install {
			run = InstallTrust
		}
		res, err := run(ctx, ca.CertFile(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		want := TrustResult{Store: StoreSystem, Outcome: s.want, Detail: wantFile}
		if len(res) != 1 || res[0] != want {
			t.Fatalf("%s: results %+v, want [%+v]", s.name, res, want)
		}
		_, statErr := os.Stat(wantFile)
		if (statErr == nil) != s.trusted {
			t.Fatalf("%s: %s exists %v, want %v", s.name, wantFile, statErr == nil, s.trusted)
		}
		if strings.HasSuffix(s.name, "again") {
			continue // nothing changed: spare the probe processes
		}
		if o, g := probeSystemTrust(t, leafFile); o != s.trusted || g != s.trusted {
			t.Fatalf("%s: openssl trusts %v, Go trusts %v; want %v", s.name, o, g, s.trusted)
		}
	}
}

// skipSystemTrustHooks puts first on PATH an update-ca-certificates that
// runs the real one without its hooks (/etc/ca-certificates/update.d): the
// Java hook starts a JVM to copy every change into the Java key store, which
// costs seconds per run and would leave the test CA's traces there. The
// system store itself (the anchor file, /etc/ssl/certs, the bundle) is
// updated exactly as in production.
func skipSystemTrustHooks(t *testing.T) {
	t.Helper()
	real, err := exec.LookPath("update-ca-certificates")
	if err != nil {
		return
	}
	dir := t.TempDir()
	noHooks := filepath.Join(dir, "no-hooks")
	if err := os.Mkdir(noHooks, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nexec " + real + " --hooksdir " + noHooks + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "update-ca-certificates"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestTrustName(t *testing.T) {
	a, b := TrustName("/srv/one"), TrustName("/srv/two")
	if a == b {
		t.Fatalf("two data folders share the store name %q", a)
	}
	if a != TrustName("/srv/one/") || a != TrustName("/srv/../srv/one") {
		t.Fatal("the same folder spelled differently gets different names")
	}
	if !strings.HasPrefix(a, "passerelle-") || len(a) != len("passerelle-12345678-") || strings.ContainsAny(a, " /") {
		t.Fatalf("TrustName = %q, want passerelle-XXXXXXXX-", a)
	}
}

func TestTrustSkipsMissingStores(t *testing.T) {
	if _, err := exec.LookPath("certutil"); err == nil {
		t.Skip("certutil is installed: the NSS skip reason cannot be observed")
	}
	dataDir, ca, _ := newTrustFixture(t)
	t.Setenv("JAVA_HOME", "")
	res, err := InstallTrust(context.Background(), ca.CertFile(), TrustConfig{Name: TrustName(dataDir), Stores: []string{"java", "NSS"}})
	if err != nil {
		t.Fatal(err)
	}
	javaDetail := "JAVA_HOME is not set"
	if home := guessJavaHome(); home != "" {
		javaDetail += " (a Java runtime is at " + home + "; set JAVA_HOME to include its trust store)"
	}
	want := []TrustResult{
		{Store: StoreNSS, Outcome: TrustSkipped, Detail: "certutil not found (install libnss3-tools, or nss-tools)"},
		{Store: StoreJava, Outcome: TrustSkipped, Detail: javaDetail},
	}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		t.Fatalf("results\n got  %+v\n want %+v", res, want)
	}

	t.Setenv("JAVA_HOME", t.TempDir())
	res, err = InstallTrust(context.Background(), ca.CertFile(), TrustConfig{Name: TrustName(dataDir), Stores: []string{"java"}})
	if err != nil {
		t.Fatal(err)
	}
	wantDetail := "no keytool in " + filepath.Join(os.Getenv("JAVA_HOME"), "bin") + " (JAVA_HOME does not point at a Java runtime)"
	if len(res) != 1 || res[0].Outcome != TrustSkipped || res[0].Detail != wantDetail {
		t.Fatalf("results %+v, want skipped: %s", res, wantDetail)
	}
}

// The Java store is exercised on a copy of the runtime's cacerts, behind a
// JAVA_HOME made for the test, so the machine's own store is never touched.
func TestTrustJavaStore(t *testing.T) {
	home := guessJavaHome()
	if home == "" {
		t.Skip("no java on PATH: the Java store cannot be exercised")
	}
	keytool := filepath.Join(home, "bin", "keytool")
	cacerts := filepath.Join(home, "lib", "security", "cacerts")
	src, err := os.ReadFile(cacerts)
	if err != nil {
		t.Skipf("no readable cacerts in the Java runtime at %s: %v", home, err)
	}
	fake := t.TempDir()
	if err := os.MkdirAll(filepath.Join(fake, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(fake, "lib", "security"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(keytool, filepath.Join(fake, "bin", "keytool")); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(fake, "lib", "security", "cacerts")
	if err := os.WriteFile(store, src, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JAVA_HOME", fake)

	dataDir, ca, _ := newTrustFixture(t)
	cfg := TrustConfig{Name: TrustName(dataDir), Stores: []string{StoreJava}}
	alias := TrustEntryName(cfg.Name, ca.Certificate())
	inStore := func() bool {
		err := exec.Command(keytool, "-list", "-keystore", store, "-storepass", "changeit", "-alias", alias).Run()
		return err == nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Each step starts a JVM or two (keytool); the repeated install and
	// uninstall are covered by the system store test.
	steps := []struct {
		install bool
		want    TrustOutcome
		present bool
	}{
		{true, TrustInstalled, true},
		{false, TrustRemoved, false},
	}
	for i, s := range steps {
		run := UninstallTrust
		if s.install {
			run = InstallTrust
		}
		res, err := run(ctx, ca.CertFile(), cfg)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		want := TrustResult{Store: StoreJava, Outcome: s.want, Detail: "Java alias " + alias}
		if len(res) != 1 || res[0] != want {
			t.Fatalf("step %d: %+v, want %+v", i, res, want)
		}
		if inStore() != s.present {
			t.Fatalf("step %d: alias %s in store %v, want %v", i, alias, !s.present, s.present)
		}
	}
}

func TestTrustErrors(t *testing.T) {
	dataDir, ca, _ := newTrustFixture(t)
	tests := []struct {
		name    string
		file    string
		cfg     TrustConfig
		wantErr string
	}{
		{"no name", ca.CertFile(), TrustConfig{}, "trust store: no CA name given"},
		{"unknown store", ca.CertFile(), TrustConfig{Name: "x-", Stores: []string{"keychain"}},
			`unknown trust store "keychain": want system, nss or java`},
		{"missing file", filepath.Join(dataDir, "nope.pem"), TrustConfig{Name: "x-"},
			"read CA certificate " + filepath.Join(dataDir, "nope.pem") + ": open " + filepath.Join(dataDir, "nope.pem") + ": no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := InstallTrust(context.Background(), tt.file, tt.cfg)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := InstallTrust(ctx, ca.CertFile(), TrustConfig{Name: "x-"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
}
