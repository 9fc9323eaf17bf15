package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testacme"
	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/secure"
)

// These tests run `passerelle serve` from a configuration file alone, the
// way an operator does, and check over real TLS on loopback that each mode
// of tls.* and acme.* reaches the listener: the library packages have
// their own tests, these prove the wiring.

// startServeConfig writes config to a file and runs `passerelle --config
// FILE serve` in-process, with no other flag, until it has printed
// listeners "<service> on <address>" lines.
func startServeConfig(t *testing.T, config string, listeners int) *served {
	t.Helper()
	return runServeCLI(t, []string{"--config", writeConfig(t, t.TempDir(), config), "serve"}, listeners)
}

// writeConfig writes yaml to dir/passerelle.yaml and returns its path.
func writeConfig(t *testing.T, dir, yaml string) string {
	t.Helper()
	file := filepath.Join(dir, "passerelle.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// dialSecure connects like a SecureSocket and returns the connection, whose
// server certificate Dial has judged trusted.
func dialSecure(t *testing.T, addr string, cfg secure.ClientConfig) *secure.ClientConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := secure.Dial(ctx, addr, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	if st := c.Status(); st != secure.StatusTrusted {
		t.Fatalf("dial %s: status %s (%s), want trusted", addr, st, c.Verdict().Reason)
	}
	return c
}

// TestServeACME obtains a certificate from an ACME CA (an in-process
// Pebble) when serve starts, the TLS-ALPN-01 challenge coming to the chat
// listener's own port as it does to :443 in configs/acme.yaml, then
// restarts serve with the CA gone: the stored certificate is served and the
// log says why.
func TestServeACME(t *testing.T) {
	// The CA must know the challenge port before serve starts, so the
	// listener's port is chosen here rather than left to the kernel.
	addr := testutil.ClosedAddr(t)
	pebble := testacme.Start(t, addr.Port, 90*24*time.Hour)
	dataDir := t.TempDir()
	config := fmt.Sprintf(`data_dir: %s
acme:
  ca: %s
  ca_root: %s
  agree: true
  email: ops@passerelle.test
  tls_alpn_port: %d
listeners:
  - address: %s
    service: chat
    tls:
      mode: acme
      names: [%s]
`, dataDir, pebble.DirectoryURL(), pebble.HTTPSRootFile(), addr.Port, addr, testacme.Name)
	client := secure.ClientConfig{ServerName: testacme.Name, RootCAs: pebble.Roots()}

	s := startServeConfig(t, config, 1)
	if got := s.addrs["chat"]; len(got) != 1 || got[0] != addr.String() {
		t.Fatalf("chat listeners %v, want [%s]", got, addr)
	}
	if !strings.Contains(s.out.String(), "passerelle: chat on "+addr.String()+" (tls acme)\n") {
		t.Errorf("stdout lacks the acme listener line:\n%s", s.out.String())
	}
	if strings.Contains(s.out.String(), "local CA") {
		t.Errorf("an acme-only configuration made or used the local CA:\n%s", s.out.String())
	}
	a := dialSecure(t, addr.String(), client)
	b := dialSecure(t, addr.String(), client)
	first := a.Verdict().Certificates[0]
	if !strings.HasPrefix(first.Issuer.CommonName, "Pebble Intermediate") {
		t.Errorf("served certificate issued by %q, want Pebble's intermediate", first.Issuer.CommonName)
	}
	ping(t, a)
	ping(t, b)
	io.WriteString(a, "issued by ACME\x00")
	if got := readFrames(t, b, 1); got[0] != "issued by ACME\x00" {
		t.Fatalf("b got %q", got)
	}
	if log := s.errOut.String(); !strings.Contains(log, `msg="certificate ready" server_name=`+testacme.Name+` mode=acme`) ||
		!strings.Contains(log, " origin=obtained\n") {
		t.Errorf("the first start's log does not say the certificate was obtained")
	}
	if err := s.stop(); err != nil {
		t.Fatalf("serve ended with %v", err)
	}

	// The CA goes away; the next start serves what is stored.
	pebble.Close()
	s2 := startServeConfig(t, config, 1)
	want := `level=WARN msg="ACME CA unreachable: serving the stored certificate; renewal will be retried in the background" server_name=` +
		testacme.Name + ` acme_ca=` + pebble.DirectoryURL()
	if !strings.Contains(s2.errOut.String(), want) {
		t.Errorf("log lacks %q", want)
	}
	c := dialSecure(t, addr.String(), client)
	if got := c.Verdict().Certificates[0].SerialNumber; got.Cmp(first.SerialNumber) != 0 {
		t.Errorf("restart served serial %x, want the stored %x", got, first.SerialNumber)
	}
	ping(t, c)
}

// TestServeFilesMutualTLS runs a files-mode chat listener that requires
// client certificates and admits only alice: alice gets in, mallory (same
// CA) and a client without a certificate are refused with the reason in the
// log. Replacing the certificate files then changes what new handshakes
// get, while alice's open connection goes on.
func TestServeFilesMutualTLS(t *testing.T) {
	dir := t.TempDir()
	serverCA := testpki.NewRoot(t, testpki.CAOptions{CommonName: "server root"})
	first := serverCA.Leaf(t, testpki.LeafOptions{})
	certFile, keyFile := first.WriteFiles(t, dir, "server")
	clientCA := testpki.NewRoot(t, testpki.CAOptions{CommonName: "client root"})
	clientCAFile := clientCA.WriteCert(t, dir, "clients.pem")
	alice := clientCA.Leaf(t, testpki.LeafOptions{Client: true, CommonName: "alice"}).TLS()
	mallory := clientCA.Leaf(t, testpki.LeafOptions{Client: true, CommonName: "mallory"}).TLS()

	config := fmt.Sprintf(`data_dir: %s
listeners:
  - address: 127.0.0.1:0
    service: chat
    tls:
      mode: files
      cert_file: %s
      key_file: %s
      client_auth: require
      client_ca_file: %s
      allow:
        common_names: [alice]
`, t.TempDir(), certFile, keyFile, clientCAFile)
	s := startServeConfig(t, config, 1)
	addr := s.addrs["chat"][0]
	as := func(cert ...tls.Certificate) secure.ClientConfig {
		return secure.ClientConfig{ServerName: "localhost", RootCAs: serverCA.Pool(), Certificates: cert}
	}

	a := dialSecure(t, addr, as(alice))
	ping(t, a)
	if got := a.Verdict().Certificates[0].SerialNumber; got.Cmp(first.Cert.SerialNumber) != 0 {
		t.Fatalf("served serial %x, want %x from %s", got, first.Cert.SerialNumber, certFile)
	}

	refusals := []struct {
		name   string
		client secure.ClientConfig
		log    string
	}{
		{"mallory", as(mallory), `msg="client refused" listener=127.0.0.1:0 service=chat remote_addr=%s status=trusted reason="not authorized: client certificate CN \"mallory\" not in allow-list"` + "\n"},
		{"no certificate", as(), `msg="client refused" listener=127.0.0.1:0 service=chat remote_addr=%s status=unknown reason="no client certificate presented"` + "\n"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			c := dialSecure(t, addr, r.client)
			// TLS 1.3: the server judges the client's certificate after
			// the client has finished, so the refusal is an alert on the
			// first read.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := c.Read(make([]byte, 1))
			if err == nil || err.Error() != "remote error: tls: bad certificate" {
				t.Fatalf("read after a refused handshake: %v, want the alert bad_certificate", err)
			}
			testutil.EventuallyContains(t, s.errOut, fmt.Sprintf(r.log, c.LocalAddr()), waitTimeout)
		})
	}

	// New files in place of the old: the next handshake gets the new leaf,
	// the open connection keeps going.
	next := serverCA.Leaf(t, testpki.LeafOptions{})
	replaceFile(t, keyFile, next.KeyPEM(t))
	replaceFile(t, certFile, next.ChainPEM())
	testutil.Eventually(t, "a handshake with the new certificate", waitTimeout, func() bool {
		c := dialSecure(t, addr, as(alice))
		defer c.Close()
		return c.Verdict().Certificates[0].SerialNumber.Cmp(next.Cert.SerialNumber) == 0
	})
	ping(t, a)
	c := dialSecure(t, addr, as(alice))
	ping(t, c)
	io.WriteString(c, "after the reload\x00")
	if got := readFrames(t, a, 1); got[0] != "after the reload\x00" {
		t.Fatalf("alice's first connection got %q", got)
	}
}

// replaceFile writes data to a temporary file next to path and renames it
// over path, as a deployment tool does, so a reader never sees half a file.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestServeExampleMTLSConfig runs configs/mtls.yaml, with only its data
// folder, address and client CA file moved to the test's own, and clients
// whose certificates come from `passerelle cert issue --client` as the
// file's comments say: an allowed common name and an allowed SPIFFE ID get
// in, another client of the same CA does not.
func TestServeExampleMTLSConfig(t *testing.T) {
	example, err := os.ReadFile(filepath.Join("..", "..", "configs", "mtls.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	config := string(example)
	for _, r := range []struct{ old, new string }{
		{"data_dir: /var/lib/passerelle\n", "data_dir: " + dataDir + "\n"},
		{"client_ca_file: /var/lib/passerelle/ca/ca.pem", "client_ca_file: " + filepath.Join(dataDir, "ca", "ca.pem")},
		{"- address: 127.0.0.1:10443\n", "- address: 127.0.0.1:0\n"},
	} {
		if strings.Count(config, r.old) != 1 {
			t.Fatalf("configs/mtls.yaml holds %q %d times, want once", r.old, strings.Count(config, r.old))
		}
		config = strings.Replace(config, r.old, r.new, 1)
	}
	// serve makes the local CA before it reads client_ca_file, so the
	// example works on an empty data folder.
	s := startServeConfig(t, config, 1)
	addr := s.addrs["chat"][0]
	pool, _ := caPool(t, dataDir)

	out := t.TempDir()
	issue := func(name string, args ...string) tls.Certificate {
		t.Helper()
		args = append([]string{"--data-dir", dataDir, "cert", "issue", "--client", "--name", name, "-o", out}, args...)
		if _, stderr, err := runCLI(t, args...); err != nil {
			t.Fatalf("cert issue %v: %v\n%s", args, err, stderr)
		}
		c, err := tls.LoadX509KeyPair(filepath.Join(out, name+".crt"), filepath.Join(out, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	as := func(c tls.Certificate) secure.ClientConfig {
		return secure.ClientConfig{ServerName: "localhost", RootCAs: pool, Certificates: []tls.Certificate{c}}
	}
	alice := dialSecure(t, addr, as(issue("alice", "--cn", "alice", "alice@example.org")))
	bot := dialSecure(t, addr, as(issue("bot", "spiffe://example.org/ns/prod/sa/bot")))
	ping(t, alice)
	ping(t, bot)
	io.WriteString(bot, "from the bot\x00")
	if got := readFrames(t, alice, 1); got[0] != "from the bot\x00" {
		t.Fatalf("alice got %q", got)
	}

	mallory := issue("mallory", "--cn", "mallory", "mallory@example.org")
	m := dialSecure(t, addr, as(mallory))
	m.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := m.Read(make([]byte, 1)); err == nil || err.Error() != "remote error: tls: bad certificate" {
		t.Fatalf("mallory read %v, want the alert bad_certificate", err)
	}
	// The reason names every kind of entry the example's list holds.
	leaf, err := x509.ParseCertificate(mallory.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pin := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	testutil.EventuallyContains(t, s.errOut, fmt.Sprintf(`msg="client refused" listener=127.0.0.1:0 service=chat remote_addr=%s status=trusted `+
		`reason="not authorized: client certificate CN \"mallory\", DNS names (none), URIs (none) and SPKI pin \"%s\" not in allow-list"`+"\n",
		m.LocalAddr(), base64.StdEncoding.EncodeToString(pin[:])), waitTimeout)
}
