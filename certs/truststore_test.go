package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testbrowser"
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

// debianJavaHook is the work of Debian's Java hook of update-ca-certificates
// (ca-certificates-java's update.d/jks-keystore), done at once: the real
// hook queues the lines it reads and lets a dpkg trigger feed them to this
// same program, which would change dpkg's state on the host. It is "" where
// ca-certificates-java or java is not installed.
func debianJavaHook() string {
	const jar = "/usr/share/ca-certificates-java/ca-certificates-java.jar"
	if _, err := os.Stat(jar); err != nil {
		return ""
	}
	if _, err := os.Stat(debianJavaCacerts); err != nil {
		return ""
	}
	if _, err := exec.LookPath("java"); err != nil {
		return ""
	}
	return "#!/bin/sh\nexec java -Xmx64m -jar " + jar + " -storepass " + defaultStorePass + "\n"
}

// The system store round trip, checked by fresh processes (openssl, Go),
// with Debian's Java hook where it is installed: uninstalling must also take
// the CA out of the Java key store the hook copied it into.
func TestTrustSystemStore(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the system store round trip is checked on Linux (update-ca-certificates)")
	}
	if _, err := exec.LookPath("update-ca-certificates"); err != nil {
		t.Skip("update-ca-certificates not installed: no Debian-style system store here")
	}
	hook := debianJavaHook()
	opts := sandboxOpts{}
	if hook != "" {
		opts.hooks = map[string]string{"jks-keystore": hook}
	}
	if !inTrustSandbox(t, opts) {
		return
	}
	if hook == "" {
		t.Log("ca-certificates-java or java is not installed: the Java key store part is not checked here (TestTrustDebianJavaLeftover checks it)")
	}
	dataDir, ca, leafFile := newTrustFixture(t)
	cfg := TrustConfig{Name: TrustName(dataDir), Stores: []string{StoreSystem}}
	ctx := context.Background()

	entry := TrustEntryName(cfg.Name, ca.Certificate())
	t.Logf("the CA is %s in the stores", entry)
	wantFile := "/usr/local/share/ca-certificates/" + entry + ".crt"
	alias := debianJavaAlias(entry)
	if o, g := probeSystemTrust(t, leafFile); o || g {
		t.Fatalf("before install: openssl trusts %v, Go trusts %v; want neither", o, g)
	}

	// The sandbox's bundle changes with the store (the host's does not:
	// inTrustSandbox compares it, hashed, before and after).
	const bundle = "/etc/ssl/certs/ca-certificates.crt"
	bundleBefore := readFile(t, bundle)
	defer func() {
		if t.Failed() {
			return
		}
		if !bytes.Equal(readFile(t, bundle), bundleBefore) {
			t.Errorf("%s differs after the round trip", bundle)
		}
	}()

	removed := wantFile
	if hook != "" {
		removed += " and Java alias " + alias + " from " + debianJavaCacerts
	}
	steps := []struct {
		name    string
		install bool
		want    TrustOutcome
		detail  string
		trusted bool
	}{
		{"install", true, TrustInstalled, wantFile, true},
		{"install again", true, TrustAlreadyInstalled, wantFile, true},
		{"uninstall", false, TrustRemoved, removed, false},
		{"uninstall again", false, TrustNotInstalled, wantFile, false},
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
		want := TrustResult{Store: StoreSystem, Outcome: s.want, Detail: s.detail}
		if len(res) != 1 || res[0] != want {
			t.Fatalf("%s: results %+v, want [%+v]", s.name, res, want)
		}
		_, statErr := os.Stat(wantFile)
		if (statErr == nil) != s.trusted {
			t.Fatalf("%s: %s exists %v, want %v", s.name, wantFile, statErr == nil, s.trusted)
		}
		// update-ca-certificates leaves its link to a deleted anchor.
		if _, err := os.Lstat("/etc/ssl/certs/" + entry + ".pem"); (err == nil) != s.trusted {
			t.Fatalf("%s: link /etc/ssl/certs/%s.pem exists %v, want %v", s.name, entry, err == nil, s.trusted)
		}
		if hook != "" {
			if got := javaStoreAliases(t, debianJavaCacerts)[alias]; got != s.trusted {
				t.Fatalf("%s: %s holds %s: %v, want %v", s.name, debianJavaCacerts, alias, got, s.trusted)
			}
		}
		if s.name == "install" && bytes.Equal(readFile(t, bundle), bundleBefore) {
			t.Fatalf("install: %s unchanged", bundle)
		}
		if strings.HasSuffix(s.name, "again") {
			continue // nothing changed: spare the probe processes
		}
		if o, g := probeSystemTrust(t, leafFile); o != s.trusted || g != s.trusted {
			t.Fatalf("%s: openssl trusts %v, Go trusts %v; want %v", s.name, o, g, s.trusted)
		}
	}
}

// javaStoreAliases lists a JKS key store's aliases with the package's own
// reader, which TestJKSAliases checks against keytool: a JVM start per look
// would cost seconds.
func javaStoreAliases(t *testing.T, store string) map[string]bool {
	t.Helper()
	aliases, err := jksAliases(readFile(t, store))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, a := range aliases {
		got[a] = true
	}
	return got
}

// TestTrustDebianJavaLeftover puts the CA in Debian's Java key store under
// the alias the Java hook gives it, as the hook would have, beside another
// CA, and checks what uninstall does: keytool takes it out (the other entry
// stays), or, with no Java runtime, the user is told exactly what is left
// and the command to remove it.
func TestTrustDebianJavaLeftover(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Debian's Java key store is checked on Linux")
	}
	tests := []struct {
		name   string
		store  string
		noJava bool
		want   func(anchor, alias string) TrustResult
	}{
		{"java store, keytool", StoreJava, false, func(_, alias string) TrustResult {
			return TrustResult{Store: StoreJava, Outcome: TrustRemoved, Detail: "Java alias " + alias + " from " + debianJavaCacerts}
		}},
		{"system store, keytool", StoreSystem, false, func(anchor, alias string) TrustResult {
			return TrustResult{Store: StoreSystem, Outcome: TrustRemoved, Detail: anchor + " and Java alias " + alias + " from " + debianJavaCacerts}
		}},
		{"java store, no Java runtime", StoreJava, true, func(_, alias string) TrustResult {
			return TrustResult{Store: StoreJava, Outcome: TrustFailed, Detail: debianJavaCacerts + " still holds the CA as alias " + alias +
				" (keytool was not found: set JAVA_HOME or put keytool on PATH): remove it with: keytool -delete -keystore " +
				debianJavaCacerts + " -storepass changeit -alias " + alias}
		}},
		{"system store, no Java runtime", StoreSystem, true, func(anchor, alias string) TrustResult {
			return TrustResult{Store: StoreSystem, Outcome: TrustFailed, Detail: "removed " + anchor + ", but " + debianJavaCacerts +
				" still holds the CA as alias " + alias + " (keytool was not found: set JAVA_HOME or put keytool on PATH): remove it with: keytool -delete -keystore " +
				debianJavaCacerts + " -storepass changeit -alias " + alias}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.noJava && findKeytool() == "" {
				t.Skip("no keytool: the removal itself cannot be checked here (the no-Java cases check what the user is told)")
			}
			if tt.store == StoreSystem {
				if _, err := exec.LookPath("update-ca-certificates"); err != nil {
					t.Skip("update-ca-certificates not installed: no Debian-style system store here")
				}
			}
			if !inTrustSandbox(t, sandboxOpts{noJava: tt.noJava}) {
				return
			}
			if _, err := os.Stat("/etc/default/cacerts"); err == nil {
				if pass, _ := javaStorePass(); pass != defaultStorePass {
					t.Skip("/etc/default/cacerts sets a storepass of its own")
				}
			}
			t.Setenv("JAVA_HOME", "") // only Debian's store is in play
			dataDir, ca, _ := newTrustFixture(t)
			cfg := TrustConfig{Name: TrustName(dataDir), Stores: []string{tt.store}}
			entry := TrustEntryName(cfg.Name, ca.Certificate())
			alias := debianJavaAlias(entry)
			anchor := "/usr/local/share/ca-certificates/" + entry + ".crt"
			if tt.store == StoreSystem {
				if _, err := InstallTrust(context.Background(), ca.CertFile(), cfg); err != nil {
					t.Fatal(err)
				}
			}
			other, err := CreateCA(CADir(t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Dir(debianJavaCacerts), 0o755); err != nil {
				t.Fatal(err)
			}
			writeJKS(t, debianJavaCacerts, defaultStorePass, map[string]*x509.Certificate{
				alias: ca.Certificate(), "debian:other.pem": other.Certificate()})

			res, err := UninstallTrust(context.Background(), ca.CertFile(), cfg)
			want := tt.want(anchor, alias)
			if len(res) != 1 || res[0] != want {
				t.Fatalf("results\n got  %+v\n want [%+v]", res, want)
			}
			if (err != nil) != (want.Outcome == TrustFailed) {
				t.Fatalf("error %v with outcome %s", err, want.Outcome)
			}
			aliases := javaStoreAliases(t, debianJavaCacerts)
			if aliases[alias] != tt.noJava || !aliases["debian:other.pem"] {
				t.Fatalf("key store after uninstall: %v; want %s there: %v, and debian:other.pem", aliases, alias, tt.noJava)
			}
		})
	}
}

// The NSS store round trip, in a NSS database made for the test in a HOME
// of its own (Chromium's ~/.pki/nssdb); the user's own stays untouched.
func TestTrustNSSStore(t *testing.T) {
	certutil, err := exec.LookPath("certutil")
	if err != nil {
		t.Skip("certutil not installed (libnss3-tools): the NSS store cannot be exercised")
	}
	if !inTrustSandbox(t, sandboxOpts{home: t.TempDir()}) {
		return
	}
	db := filepath.Join(os.Getenv("HOME"), ".pki", "nssdb")
	if err := os.MkdirAll(db, 0o700); err != nil {
		t.Fatal(err)
	}
	runCmd(t, certutil, "-N", "-d", "sql:"+db, "--empty-password")

	dataDir, ca, _ := newTrustFixture(t)
	cfg := TrustConfig{Name: TrustName(dataDir), Stores: []string{StoreNSS}}
	nick := TrustEntryName(cfg.Name, ca.Certificate())
	steps := []struct {
		name    string
		install bool
		want    TrustOutcome
		present bool
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
		res, err := run(context.Background(), ca.CertFile(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		want := TrustResult{Store: StoreNSS, Outcome: s.want, Detail: "NSS nickname " + nick}
		if len(res) != 1 || res[0] != want {
			t.Fatalf("%s: results %+v, want [%+v]", s.name, res, want)
		}
		out, _ := exec.Command(certutil, "-L", "-d", "sql:"+db).CombinedOutput()
		if strings.Contains(string(out), nick) != s.present {
			t.Fatalf("%s: certutil -L lists %s: %v, want %v\n%s", s.name, nick, !s.present, s.present, out)
		}
	}
}

// TestTrustNSSCreatesDatabase: on a fresh account (a HOME with no
// ~/.pki/nssdb, as a Chromium that never imported a certificate leaves it),
// install makes the database Chromium reads, puts the CA in it, and says
// so; uninstall never makes one.
func TestTrustNSSCreatesDatabase(t *testing.T) {
	certutil, err := exec.LookPath("certutil")
	if err != nil {
		t.Skip("certutil not installed (libnss3-tools): the NSS store cannot be exercised")
	}
	if !inTrustSandbox(t, sandboxOpts{home: t.TempDir()}) {
		return
	}
	db := filepath.Join(os.Getenv("HOME"), ".pki", "nssdb")
	dataDir, ca, _ := newTrustFixture(t)
	cfg := TrustConfig{Name: TrustName(dataDir), Stores: []string{StoreNSS}}
	nick := TrustEntryName(cfg.Name, ca.Certificate())

	res, err := UninstallTrust(context.Background(), ca.CertFile(), cfg)
	want := TrustResult{Store: StoreNSS, Outcome: TrustSkipped, Detail: "no Firefox profile or NSS database (~/.pki/nssdb) found"}
	if err != nil || len(res) != 1 || res[0] != want {
		t.Fatalf("uninstall with no database: %+v, %v; want [%+v]", res, err, want)
	}
	if _, err := os.Stat(db); err == nil {
		t.Fatal("uninstall created an NSS database")
	}

	res, err = InstallTrust(context.Background(), ca.CertFile(), cfg)
	want = TrustResult{Store: StoreNSS, Outcome: TrustInstalled,
		Detail: "created the NSS database " + db + " (Chromium's, as Chromium makes it: empty password); NSS nickname " + nick}
	if err != nil || len(res) != 1 || res[0] != want {
		t.Fatalf("install on a fresh account: %+v, %v\nwant [%+v]", res, err, want)
	}
	if fi, err := os.Stat(db); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("database folder: %v, %v; want mode 0700", fi, err)
	}
	out, err := exec.Command(certutil, "-L", "-d", "sql:"+db, "-n", nick).CombinedOutput()
	if err != nil {
		t.Fatalf("certutil -L -n %s: %v\n%s", nick, err, out)
	}
	res, err = InstallTrust(context.Background(), ca.CertFile(), cfg)
	if err != nil || len(res) != 1 || res[0].Outcome != TrustAlreadyInstalled {
		t.Fatalf("second install: %+v, %v", res, err)
	}

	// What the user saw: Chromium on this account now trusts a server of
	// the CA; on an account without the database it does not.
	leaf, err := ca.Issue(IssueRequest{Names: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "<title>trusted</title>")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Key}}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refusal below is expected
	srv.StartTLS()
	defer srv.Close()
	url := "https://localhost:" + srv.URL[strings.LastIndex(srv.URL, ":")+1:] + "/"
	fresh := testbrowser.Start(t, testbrowser.Options{Home: t.TempDir()})
	if err := fresh.NavigateErr(url); err == nil || !strings.Contains(err.Error(), "ERR_CERT_AUTHORITY_INVALID") {
		t.Fatalf("chromium on an account without the CA: %v, want ERR_CERT_AUTHORITY_INVALID", err)
	}
	b := testbrowser.Start(t, testbrowser.Options{Home: os.Getenv("HOME")})
	b.Navigate(url)
	if title := testbrowser.Eval[string](b, "document.title"); title != "trusted" {
		t.Fatalf("page title %q", title)
	}
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
	// Uninstalling also looks at Debian's key store: keep it out of reach.
	if !inTrustSandbox(t, sandboxOpts{}) {
		return
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
