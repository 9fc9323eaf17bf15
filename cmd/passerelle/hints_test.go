package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/passerelle/passerelle/internal/serve"
)

// TestHintsNameTheDataFolder: the commands printed as advice carry the
// --data-dir the user gave, so that following them reaches the same CA; a
// client that does not trust the server's CA reads the status once, and
// how to trust it.
func TestHintsNameTheDataFolder(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "my data")
	s := startServe(t, dataDir)
	caFile := filepath.Join(dataDir, "ca", "ca.pem")
	want := "passerelle: clients on this machine trust it with `passerelle --data-dir '" + dataDir + "' ca install`, or give them that file (openssl s_client -CAfile " + caFile + ")\n"
	if !strings.Contains(s.out.String(), want) {
		t.Errorf("serve output\n%s\nlacks\n%s", s.out.String(), want)
	}
	out, _, err := runCLI(t, "--data-dir", dataDir, "ca", "create")
	if err != nil || !strings.Contains(out, "Trust it with \"passerelle --data-dir '"+dataDir+"' ca install\", or give clients "+caFile+".\n") {
		t.Errorf("ca create: %v\n%s", err, out)
	}
	if got := serve.DataDirFlag(serve.DefaultDataDir()); got != "" {
		t.Errorf("the default data folder gives the hint %q, want nothing", got)
	}

	other := t.TempDir()
	chat := s.addrs["chat"][0]
	for _, args := range [][]string{{"chat", chat}, {"get", s.addrs["envoie"][0], "blason.png", "-o", filepath.Join(other, "x")}} {
		_, _, err := runCLI(t, append([]string{"--data-dir", other}, args...)...)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if !strings.HasPrefix(msg, "connect to ") || strings.Count(msg, "untrustedSigners") != 1 ||
			!strings.Contains(msg, ": certificate status untrustedSigners: ") ||
			!strings.HasSuffix(msg, "; trust the server's CA with --ca FILE or, for a passerelle on this machine, --data-dir DIR (the data folder serve printed)") {
			t.Errorf("%s: %s", args[0], msg)
		}
	}
}

// TestServeSaysCertificateReadyOncePerName: the chat and asset listeners
// share the local certificate of the same names; the log says it is ready
// once per name, not once per listener.
func TestServeSaysCertificateReadyOncePerName(t *testing.T) {
	s := startServe(t, t.TempDir())
	log := s.errOut.String()
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if n := strings.Count(log, `msg="certificate ready" server_name=`+name+" "); n != 1 {
			t.Errorf("certificate ready for %s: %d lines, want 1\n%s", name, n, log)
		}
	}
}
