package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
)

// buildBinary builds the passerelle binary once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "passerelle")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinarySignals runs the real binary: it serves with no configuration,
// reloads on SIGHUP without dropping a client, and on SIGTERM closes its
// clients and exits 0.
func TestBinarySignals(t *testing.T) {
	bin := buildBinary(t)
	dataDir := t.TempDir()
	cmd := exec.Command(bin, "--data-dir", dataDir, "serve", "--chat-address", "127.0.0.1:0", "--assets-address", "127.0.0.1:0")
	stdout, _ := cmd.StdoutPipe()
	stderr := &testutil.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var chatAddr string
	deadline := time.After(20 * time.Second)
	for chatAddr == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("serve exited early; stderr:\n%s", stderr.String())
			}
			if m := listenLine.FindStringSubmatch(l); m != nil && m[1] == "chat" {
				chatAddr = m[2]
			}
		case <-deadline:
			t.Fatal("serve printed no chat listener")
		}
	}
	go io.Copy(io.Discard, stdout)

	pool, _ := caPool(t, dataDir)
	c := dialTLS(t, chatAddr, "localhost", pool)
	ping(t, c)

	cmd.Process.Signal(syscall.SIGHUP)
	testutil.EventuallyContains(t, stderr, "certificates reloaded", waitTimeout)
	ping(t, c) // still connected

	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the client was not disconnected at shutdown")
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Fatalf("no shutdown line in the log:\n%s", stderr.String())
	}
}

// TestEnvironmentPrecedence checks viper's order for serve: a flag beats
// PASSERELLE_*, which beats the file, which beats the default.
func TestEnvironmentPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := writeConfig(t, dir, "chat:\n  max_message: 5\n  queue_bytes: 3\n")

	// The file alone: its values are read (and refused).
	_, _, err := runCLI(t, "--data-dir", dir, "--config", file, "serve")
	if err == nil || !strings.Contains(err.Error(), "chat.queue_bytes 3: want at least chat.max_message (5)") {
		t.Fatalf("file values not used: %v", err)
	}
	// The environment beats the file.
	t.Setenv("PASSERELLE_CHAT_QUEUE_BYTES", "4")
	_, _, err = runCLI(t, "--data-dir", dir, "--config", file, "serve")
	if err == nil || !strings.Contains(err.Error(), "chat.queue_bytes 4: want at least chat.max_message (5)") {
		t.Fatalf("environment did not beat the file: %v", err)
	}
	// PASSERELLE_DATA_DIR names the data folder; --data-dir beats it.
	envDir, flagDir := t.TempDir(), t.TempDir()
	t.Setenv("PASSERELLE_DATA_DIR", envDir)
	if _, _, err := runCLI(t, "ca", "create"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(envDir, "ca", "ca.pem")); err != nil {
		t.Fatalf("PASSERELLE_DATA_DIR was not used: %v", err)
	}
	out, _, err := runCLI(t, "--data-dir", flagDir, "ca", "create")
	if err != nil || !strings.Contains(out, filepath.Join(flagDir, "ca", "ca.pem")) {
		t.Fatalf("--data-dir did not beat the environment: %v\n%s", err, out)
	}
}
