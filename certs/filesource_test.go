package certs

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

// writePair writes a leaf's chain and key where a files-mode listener
// reads them, the way an operator's tool would: atomically, certificate
// first.
func writePair(t *testing.T, leaf *testpki.Leaf, certFile, keyFile string) {
	t.Helper()
	if err := WriteFileAtomic(certFile, leaf.ChainPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(keyFile, leaf.KeyPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFilesSourceHotReload(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	inter := root.Intermediate(t, testpki.CAOptions{})
	a := inter.Leaf(t, testpki.LeafOptions{})
	b := inter.Leaf(t, testpki.LeafOptions{})
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	writePair(t, a, certFile, keyFile)

	log, logs := testutil.Logger(t, slog.LevelDebug)
	m := newTestManager(t, ManagerConfig{DataDir: t.TempDir(), Logger: log, FileDebounce: 20 * time.Millisecond})
	src, err := m.Source(context.Background(), TLSSpec{Mode: ModeFiles, CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	if src.Mode != ModeFiles || strings.Join(src.Names, ",") != "localhost,127.0.0.1" {
		t.Errorf("source = %s %v", src.Mode, src.Names)
	}
	addr := echoServer(t, src.GetCertificate, src.NextProtos)
	serial := func() string {
		leaf, err := dialLeaf(t, addr, "localhost", root.Pool())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		return leaf.SerialNumber.Text(16)
	}
	if got := serial(); got != a.Cert.SerialNumber.Text(16) {
		t.Fatalf("served %s, want A", got)
	}
	// A client that sends no server name gets the same certificate.
	if leaf, err := dialLeaf(t, addr, "", root.Pool()); err != nil || leaf.SerialNumber.Cmp(a.Cert.SerialNumber) != 0 {
		t.Fatalf("no server name: %v, %v; want A", leaf, err)
	}

	// A connection opened on A stays up across the swap.
	open, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost", RootCAs: root.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	echo := func(c *tls.Conn, msg string) {
		t.Helper()
		if _, err := fmt.Fprintf(c, "%s\n", msg); err != nil {
			t.Fatalf("write on the open connection: %v", err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != msg+"\n" {
			t.Fatalf("echo on the open connection = %q, %v", line, err)
		}
	}
	echo(open, "before")

	writePair(t, b, certFile, keyFile)
	testutil.Eventually(t, "certificate B served after the file change", 5*time.Second, func() bool {
		return serial() == b.Cert.SerialNumber.Text(16)
	})
	echo(open, "after")
	if got := open.ConnectionState().PeerCertificates[0].SerialNumber.Text(16); got != a.Cert.SerialNumber.Text(16) {
		t.Errorf("open connection's certificate changed to %s", got)
	}
	testutil.EventuallyContains(t, logs, `msg="certificate reloaded" cert_file=`+certFile+` trigger="file change" old_serial=`+a.Cert.SerialNumber.Text(16)+` serial=`+b.Cert.SerialNumber.Text(16),
		5*time.Second)

	// A bad file keeps B and says why, both on the watcher and on Reload.
	if err := WriteFileAtomic(certFile, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantErr := "tls.cert_file " + certFile + ": no PEM certificate found"
	testutil.EventuallyContains(t, logs, `msg="certificate files not reloaded; still serving the previous certificate" cert_file=`+certFile+` trigger="file change" error="`+wantErr+`"`,
		5*time.Second)
	if got := serial(); got != b.Cert.SerialNumber.Text(16) {
		t.Errorf("after a bad file, served %s, want B", got)
	}
	if err := m.Reload(); err == nil || err.Error() != wantErr {
		t.Errorf("Reload error = %v, want %q", err, wantErr)
	}

	// Manual reload (SIGHUP) picks up a good pair even without a file event
	// reaching the watcher first.
	c := inter.Leaf(t, testpki.LeafOptions{})
	if err := os.WriteFile(certFile, c.ChainPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, c.KeyPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != c.Cert.SerialNumber.Text(16) {
		t.Errorf("after Reload, served %s, want C", got)
	}
	echo(open, "still up")
}

func TestFilesSourceBadFiles(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	a := root.Leaf(t, testpki.LeafOptions{})
	b := root.Leaf(t, testpki.LeafOptions{})
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certA, keyA, keyB := write("a.crt", a.ChainPEM()), write("a.key", a.KeyPEM(t)), write("b.key", b.KeyPEM(t))
	junk := write("junk.pem", []byte("junk"))
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name      string
		cert, key string
		want      string
	}{
		{"missing certificate", missing, keyA, "tls.cert_file: open " + missing + ": no such file or directory"},
		{"missing key", certA, missing, "tls.key_file: open " + missing + ": no such file or directory"},
		{"junk certificate", junk, keyA, "tls.cert_file " + junk + ": no PEM certificate found"},
		{"junk key", certA, junk, "tls.key_file " + junk + ": no PEM private key found"},
		{"key of another certificate", certA, keyB, "tls.key_file " + keyB + " does not match the certificate in tls.cert_file " + certA},
	}
	m := newTestManager(t, ManagerConfig{DataDir: t.TempDir()})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Source(context.Background(), TLSSpec{Mode: ModeFiles, CertFile: tt.cert, KeyFile: tt.key})
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

// A broken certificate file in a busy folder is reloaded on every change
// there; its failure is logged once per change of the error or the files,
// and the recovery once.
func TestFilesSourceLogsRepeatedFailureOnce(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	a := root.Leaf(t, testpki.LeafOptions{})
	b := root.Leaf(t, testpki.LeafOptions{})
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	writePair(t, a, certFile, keyFile)
	log, logs := testutil.Logger(t, slog.LevelDebug)
	// The default debounce: a certificate and key written one after the
	// other are read together, never half-written.
	m := newTestManager(t, ManagerConfig{DataDir: t.TempDir(), Logger: log})
	if _, err := m.Source(context.Background(), TLSSpec{Mode: ModeFiles, CertFile: certFile, KeyFile: keyFile}); err != nil {
		t.Fatal(err)
	}
	count := func(msg string) int { return strings.Count(logs.String(), `msg="`+msg+`"`) }
	const (
		checked   = "checking certificate files"
		failed    = "certificate files not reloaded; still serving the previous certificate"
		recovered = "certificate files valid again; still serving the same certificate"
		reloaded  = "certificate reloaded"
	)
	// busy changes another file of the folder n times, each time waiting
	// for the reload it causes, plus n reloads by signal (Manager.Reload).
	busy := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			before := count(checked)
			if err := os.WriteFile(filepath.Join(dir, "access.log"), fmt.Appendf(nil, "line %d\n", i), 0o644); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, "a reload after a change in the folder", 5*time.Second, func() bool { return count(checked) > before })
			_ = m.Reload()
		}
	}
	steps := []struct {
		name  string
		write func()
		// log lines expected after the step and 3 busy cycles
		failed, recovered, reloaded int
	}{
		{"broken certificate", func() { writeAtomic(t, certFile, []byte("not a certificate\n")) }, 1, 0, 0},
		{"same bytes written again", func() { writeAtomic(t, certFile, []byte("not a certificate\n")) }, 1, 0, 0},
		{"other bytes, same error", func() { writeAtomic(t, certFile, []byte("still not a certificate\n")) }, 2, 0, 0},
		{"other error", func() { writeAtomic(t, keyFile, []byte("junk\n")) }, 3, 0, 0},
		{"same certificate back", func() { writePair(t, a, certFile, keyFile) }, 3, 1, 0},
		{"broken again", func() { writeAtomic(t, keyFile, []byte("junk\n")) }, 4, 1, 0},
		{"new certificate", func() { writePair(t, b, certFile, keyFile) }, 4, 1, 1},
	}
	for _, s := range steps {
		s.write()
		busy(3)
		if f, r, l := count(failed), count(recovered), count(reloaded); f != s.failed || r != s.recovered || l != s.reloaded {
			t.Fatalf("after %q and 3 reload cycles: %d failure, %d recovery, %d reload lines; want %d, %d, %d\n%s",
				s.name, f, r, l, s.failed, s.recovered, s.reloaded, logs)
		}
	}
}

func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := WriteFileAtomic(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
