package main

import (
	"crypto/tls"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

// opensslRun runs openssl and returns its combined output and error.
func opensslRun(t *testing.T, args ...string) (string, error) {
	t.Helper()
	testutil.Tool(t, "openssl")
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err
}

func assertPerm(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Fatalf("%s has mode %v, want %v", path, got, want)
	}
}

func TestCertIssueServer(t *testing.T) {
	dataDir, work := t.TempDir(), t.TempDir()
	out, _, err := runCLI(t, "--data-dir", dataDir, "cert", "issue", "localhost", "127.0.0.1", "::1",
		"--out", work, "--lifetime", "30d")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dataDir, "ca", "ca.pem")
	certFile, keyFile := filepath.Join(work, "localhost+2.crt"), filepath.Join(work, "localhost+2.key")
	for _, want := range []string{
		"Created the local CA " + caFile,
		"Issued a server certificate for localhost, 127.0.0.1, ::1, valid until ",
		" (30 days)\n",
		"  certificate: " + certFile + "\n  key:         " + keyFile + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	assertPerm(t, keyFile, 0o600)
	assertPerm(t, certFile, 0o644)

	// openssl accepts it for each name, and the key matches.
	for _, host := range []string{"-verify_hostname=localhost", "-verify_ip=127.0.0.1", "-verify_ip=::1"} {
		kv := strings.SplitN(host, "=", 2)
		if out, err := opensslRun(t, "verify", "-CAfile", caFile, "-purpose", "sslserver", kv[0], kv[1], certFile); err != nil {
			t.Errorf("openssl verify %s: %v\n%s", host, err, out)
		}
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Fatalf("certificate and key do not pair: %v", err)
	}

	// Never overwritten without --force, and nothing half-written.
	before, _ := os.ReadFile(certFile)
	_, _, err = runCLI(t, "--data-dir", dataDir, "cert", "issue", "localhost", "127.0.0.1", "::1", "--out", work, "--p12", "--p12-password", "x")
	if want := certFile + " already exists: use --force to overwrite, or --name/--out for another file"; err == nil || err.Error() != want {
		t.Fatalf("overwrite: %v, want %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(work, "localhost+2.p12")); err == nil {
		t.Fatal("a refused issue still wrote the PKCS#12 file")
	}
	if _, _, err := runCLI(t, "--data-dir", dataDir, "cert", "issue", "localhost", "127.0.0.1", "::1", "--out", work, "--force"); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(certFile); string(after) == string(before) {
		t.Fatal("--force did not replace the certificate")
	}
}

func TestCertIssueClientPKCS12(t *testing.T) {
	dataDir, work := t.TempDir(), t.TempDir()
	t.Setenv(p12PasswordEnv, "from-env")
	_, _, err := runCLI(t, "--data-dir", dataDir, "cert", "issue", "--client", "--cn", "alice",
		"alice@example.com", "spiffe://example.org/alice", "--p12", "--out", work, "--key-type", "rsa-2048")
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(work, "alice@example.com+1-client")
	assertPerm(t, base+".p12", 0o600)
	assertPerm(t, base+".key", 0o600)
	caFile := filepath.Join(dataDir, "ca", "ca.pem")

	// OpenSSL 3 reads the legacy file without -legacy, with the password
	// from the environment.
	out, err := opensslRun(t, "pkcs12", "-in", base+".p12", "-passin", "env:"+p12PasswordEnv, "-nodes", "-info")
	if err != nil {
		t.Fatalf("openssl pkcs12: %v\n%s", err, out)
	}
	for _, want := range []string{"Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC", "CN = alice\n", "BEGIN PRIVATE KEY"} {
		if !strings.Contains(out, want) {
			t.Errorf("openssl pkcs12 output lacks %q:\n%s", want, out)
		}
	}
	if out, err := opensslRun(t, "verify", "-CAfile", caFile, "-purpose", "sslclient", base+".crt"); err != nil {
		t.Fatalf("openssl verify client: %v\n%s", err, out)
	}

	// inspect reads it back, password from the environment too.
	out, _, err = runCLI(t, "cert", "inspect", base+".p12", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep inspectJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	c := rep.Certificates
	if rep.Source != "file" || rep.Format != "PKCS#12" || !rep.HasPrivateKey || len(c) != 2 ||
		c[0].CommonName != "alice" || strings.Join(c[0].ExtKeyUsage, ",") != "clientAuth,emailProtection" ||
		c[0].KeyType != "RSA" || c[0].KeyBits != 2048 || strings.Join(c[0].URIs, ",") != "spiffe://example.org/alice" ||
		!c[1].IsCA {
		t.Fatalf("inspect --json: %s", out)
	}

	_, _, err = runCLI(t, "cert", "inspect", base+".p12", "--p12-password", "wrong")
	if want := base + ".p12: wrong PKCS#12 password: give it with --p12-password or PASSERELLE_P12_PASSWORD"; err == nil || err.Error() != want {
		t.Fatalf("wrong password: %v, want %q", err, want)
	}
	// The flag's former name still works, and --help no longer shows it.
	if _, _, err := runCLI(t, "cert", "inspect", base+".p12", "--password", "wrong"); err == nil || !strings.Contains(err.Error(), "wrong PKCS#12 password") {
		t.Fatalf("--password wrong: %v", err)
	}
	help, _, _ := runCLI(t, "cert", "inspect", "--help")
	if !strings.Contains(help, "--p12-password string") || strings.Contains(help, "--password") {
		t.Errorf("cert inspect --help:\n%s", help)
	}
}

// TestCertIssueRoute: a cluster route certificate passes OpenSSL's checks
// as a server and as a client certificate, for the node's name.
func TestCertIssueRoute(t *testing.T) {
	dataDir, work := t.TempDir(), t.TempDir()
	stdout, _, err := runCLI(t, "--data-dir", dataDir, "cert", "issue", "--route", "node1.example.org", "--out", work)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "Issued a cluster route (server and client) certificate for node1.example.org, valid until ") {
		t.Fatalf("output:\n%s", stdout)
	}
	caFile := filepath.Join(dataDir, "ca", "ca.pem")
	crt := filepath.Join(work, "node1.example.org.crt")
	for _, purpose := range []string{"sslserver", "sslclient"} {
		if out, err := opensslRun(t, "verify", "-CAfile", caFile, "-purpose", purpose, "-verify_hostname", "node1.example.org", crt); err != nil {
			t.Fatalf("openssl verify -purpose %s: %v\n%s", purpose, err, out)
		}
	}
}

func TestCertIssuePKCS12Passwords(t *testing.T) {
	dataDir, work := t.TempDir(), t.TempDir()
	t.Setenv(p12PasswordEnv, "")
	_, _, err := runCLI(t, "--data-dir", dataDir, "cert", "issue", "bob.lan", "--p12", "--out", work)
	want := `--p12 needs a password: give --p12-password or set PASSERELLE_P12_PASSWORD (--p12-password "" for an unprotected file)`
	if err == nil || err.Error() != want {
		t.Fatalf("no password: %v, want %q", err, want)
	}
	// An explicit empty password is honoured; --p12-password implies --p12.
	if _, _, err := runCLI(t, "--data-dir", dataDir, "cert", "issue", "bob.lan", "--p12-password", "", "--out", work,
		"--p12-format", "modern"); err != nil {
		t.Fatal(err)
	}
	out, err := opensslRun(t, "pkcs12", "-in", filepath.Join(work, "bob.lan.p12"), "-passin", "pass:", "-nodes", "-info")
	if err != nil || !strings.Contains(out, "PBES2, PBKDF2, AES-256-CBC") {
		t.Fatalf("openssl pkcs12 on the modern, empty-password file: %v\n%s", err, out)
	}
}

func TestCertIssueErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no name", []string{}, "give at least one name (DNS name, IP address, e-mail or URI), or --client with --cn"},
		{"client and route", []string{"--client", "--route", "node1.lan"}, "--client and --route: choose one (a route certificate is already a client one, and a server one)"},
		{"client without name or cn", []string{"--client"}, "give at least one name (DNS name, IP address, e-mail or URI), or --client with --cn"},
		{"bad lifetime", []string{"a.lan", "--lifetime", "soon"}, `--lifetime "soon": want days like 90d or a duration like 2160h`},
		{"negative lifetime", []string{"a.lan", "--lifetime", "-3d"}, `--lifetime "-3d": must be positive`},
		{"lifetime over maximum", []string{"a.lan", "--lifetime", "900d"}, `--lifetime "900d": over the 825-day maximum that clients accept`},
		{"bad key type", []string{"a.lan", "--key-type", "dsa"}, `unknown key type "dsa": want one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096, ed25519`},
		{"bad p12 format", []string{"a.lan", "--p12-format", "rc2"}, `unknown PKCS#12 format "rc2": want legacy or modern`},
		{"name with folder", []string{"a.lan", "--name", "../x"}, `--name "../x": a file name without folder, please (use --out for the folder)`},
		{"bad DNS name", []string{"bad_name!.lan"}, `issue: invalid name "bad_name!.lan": character '!' not allowed in a DNS name`},
		{"mistyped IP address", []string{"999.1.1.1"}, `issue: invalid name "999.1.1.1": not a valid IP address, nor a valid DNS name (the last label of a DNS name cannot be all digits)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir, work := t.TempDir(), t.TempDir()
			args := append([]string{"--data-dir", dataDir, "cert", "issue", "--out", work}, tt.args...)
			_, _, err := runCLI(t, args...)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.wantErr {
				t.Fatalf("error\n got  %q\n want %q", err, tt.wantErr)
			}
			if entries, _ := os.ReadDir(work); len(entries) != 0 {
				t.Fatalf("a failed issue left %d files in the output folder", len(entries))
			}
		})
	}
}

func TestCertInspectFile(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{CommonName: "Inspect CLI Root"})
	leaf := root.Leaf(t, testpki.LeafOptions{})
	dir := t.TempDir()
	certFile, keyFile := leaf.WriteFiles(t, dir, "server")
	derFile := filepath.Join(dir, "server.der")
	if err := os.WriteFile(derFile, leaf.Cert.Raw, 0o644); err != nil {
		t.Fatal(err)
	}

	out, _, err := runCLI(t, "cert", "inspect", certFile)
	if err != nil {
		t.Fatal(err)
	}
	wantHead := certFile + ": PEM, 1 certificate\n\nCertificate 1 of 1\n  Subject:        CN=localhost,O=passerelle tests\n" +
		"  Issuer:         CN=Inspect CLI Root,O=passerelle tests\n  Names:          DNS:localhost, IP:127.0.0.1\n"
	if !strings.HasPrefix(out, wantHead) {
		t.Fatalf("text output:\n%s\nwant it to start with:\n%s", out, wantHead)
	}
	for _, want := range []string{"  SHA-256:        " + certs.Fingerprint(leaf.Cert) + "\n", "  SPKI pin:       " + certs.SPKIPin(leaf.Cert) + "\n",
		"  Ext. key usage: serverAuth\n", "  CA:             no\n", " (0 days left)\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}

	out, _, err = runCLI(t, "cert", "inspect", derFile, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep inspectJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Format != "DER" || len(rep.Certificates) != 1 || rep.Certificates[0].SPKIPin != certs.SPKIPin(leaf.Cert) {
		t.Fatalf("DER --json: %s", out)
	}

	tests := []struct {
		name, arg, wantErr string
	}{
		{"missing", filepath.Join(dir, "nope.pem"), filepath.Join(dir, "nope.pem") + ": no such file, and not a HOST:PORT address"},
		{"key only", keyFile, keyFile + ": PEM data holds no CERTIFICATE block (found PRIVATE KEY)"},
		{"folder", dir, dir + ": is a directory, want a PEM, DER or PKCS#12 file or HOST:PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCLI(t, "cert", "inspect", tt.arg)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
	if _, _, err := runCLI(t, "cert", "inspect"); err == nil || err.Error() != "give one FILE or HOST:PORT to inspect (got 0 arguments)" {
		t.Fatalf("no argument: %v", err)
	}
}

func TestCertInspectLiveServer(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	leaf := root.Leaf(t, testpki.LeafOptions{DNSNames: []string{"chat.lan"},
		NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()

	out, _, err := runCLI(t, "cert", "inspect", ln.Addr().String(), "--servername", "chat.lan", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep inspectJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Source != "server" || rep.ServerName != "chat.lan" || rep.TLSVersion != "TLS 1.3" || len(rep.Certificates) != 1 ||
		rep.Certificates[0].Validity != "expired" || rep.Certificates[0].DaysLeft != -2 {
		t.Fatalf("live --json: %s", out)
	}

	out, _, err = runCLI(t, "cert", "inspect", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, ln.Addr().String()+", server name (none): TLS 1.3, TLS_") || !strings.Contains(out, "(EXPIRED 2 days ago)") {
		t.Fatalf("live text:\n%s", out)
	}
}

// The cert issue commands in configs/mtls.yaml's comments work exactly as
// written, run by a shell with the real binary, in a folder holding a copy
// of configs/ (the data folder redirected by PASSERELLE_DATA_DIR, which wins
// over the file's data_dir), and make the files its openssl example uses.
func TestCertMTLSExampleCommands(t *testing.T) {
	yaml, err := os.ReadFile("../../configs/mtls.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var commands []string
	for _, line := range strings.Split(string(yaml), "\n") {
		cmd, ok := strings.CutPrefix(line, "#   ")
		if ok && strings.Contains(cmd, "passerelle --config configs/mtls.yaml cert issue ") {
			commands = append(commands, cmd)
		}
	}
	if len(commands) != 2 {
		t.Fatalf("found %d cert issue examples in configs/mtls.yaml, want 2: %q", len(commands), commands)
	}
	bin := buildBinary(t)
	work := t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "configs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "configs", "mtls.yaml"), yaml, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + work, "PASSERELLE_DATA_DIR=" + filepath.Join(work, "data")}
	for _, c := range commands {
		cmd := exec.Command("sh", "-c", c)
		cmd.Dir, cmd.Env = work, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", c, err, out)
		}
	}
	for _, f := range []string{"alice@example.org-client.crt", "alice@example.org-client.key", "alice@example.org-client.p12",
		"spiffe___example.org_ns_prod_sa_bot-client.crt"} {
		if _, err := os.Stat(filepath.Join(work, f)); err != nil {
			t.Errorf("the examples made no %s: %v", f, err)
		}
	}
	// The PKCS#12 file opens with the example's password.
	out, _, err := runCLI(t, "cert", "inspect", filepath.Join(work, "alice@example.org-client.p12"), "--p12-password", "s3cret")
	if err != nil || !strings.Contains(out, "alice") {
		t.Fatalf("cert inspect of the example's PKCS#12: %v\n%s", err, out)
	}
}

// What is not a certificate file gets one message saying what was wanted,
// and inspect reads no further (a FIFO would block, /dev/zero never end).
func TestCertInspectBadTargets(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 16<<20+1); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name, target, want string
	}{
		{"folder", dir, dir + ": is a directory, want a PEM, DER or PKCS#12 file or HOST:PORT"},
		{"FIFO", fifo, fifo + ": not a regular file, want a PEM, DER or PKCS#12 file or HOST:PORT"},
		{"device", "/dev/zero", "/dev/zero: not a regular file, want a PEM, DER or PKCS#12 file or HOST:PORT"},
		{"too large", big, big + ": larger than 16 MiB: not a certificate file"},
		{"missing", missing, missing + ": no such file, and not a HOST:PORT address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := runCLI(t, "cert", "inspect", tt.target)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error\n got  %v\n want %s", err, tt.want)
			}
			if out != "" {
				t.Fatalf("stdout %q, want nothing", out)
			}
		})
	}
}
