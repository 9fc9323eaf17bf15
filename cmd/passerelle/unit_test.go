package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestServiceUnit checks configs/passerelle.service: the privileges it
// grants and takes away, and that systemd itself accepts it
// (systemd-analyze verify, where the tool exists).
func TestServiceUnit(t *testing.T) {
	unit, err := os.ReadFile(filepath.Join("..", "..", "configs", "passerelle.service"))
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(unit), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{
		"User=passerelle",
		"ExecStart=/usr/local/bin/passerelle --config /etc/passerelle/passerelle.yaml serve",
		"ExecReload=/bin/kill -HUP $MAINPID",
		"StateDirectory=passerelle",
		"Environment=PASSERELLE_DATA_DIR=%S/passerelle",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
		"NoNewPrivileges=yes",
		"ProtectSystem=strict",
		"ProtectHome=yes",
	} {
		if !lines[want] {
			t.Errorf("configs/passerelle.service lacks the line %q", want)
		}
	}

	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd): the unit was checked line by line only")
	}
	// verify wants ExecStart's program to exist: point it at this test
	// binary, changing nothing else.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "passerelle.service")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/passerelle", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "verify", "--man=no", file).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
