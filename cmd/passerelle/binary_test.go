package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
)

// binDir holds the binary built by buildBinary; TestMain removes it.
var binDir string

// builtBinary builds the passerelle binary the first time a test asks for
// it, alone in its folder (a test puts that folder on PATH).
var builtBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "passerelle-test-bin-")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "passerelle")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// buildBinary is the passerelle binary, built once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin, err := builtBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
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

// TestEnvironmentValuesChecked runs the real binary: a PASSERELLE_* value
// that is not of its key's type stops every command, not only serve, with
// the variable's name in the words a configuration file gets, and exit
// status 1; a good value is taken.
func TestEnvironmentValuesChecked(t *testing.T) {
	bin := buildBinary(t)
	const noUnit = "has no unit: write a duration such as 10s or 10ms"
	tests := []struct {
		name string
		env  []string
		args []string
		want []string // the problems, in order; none: the command succeeds
	}{
		{"check timeout without unit", []string{"PASSERELLE_CHECK_TIMEOUT=10"}, []string{"check", "127.0.0.1:1"},
			[]string{"PASSERELLE_CHECK_TIMEOUT: 10 " + noUnit}},
		{"testbed port not a number", []string{"PASSERELLE_TESTBED_BASE_PORT=abc"}, []string{"testbed"},
			[]string{`PASSERELLE_TESTBED_BASE_PORT: "abc": want a whole number`}},
		{"chat write timeout for chat", []string{"PASSERELLE_CHAT_WRITE_TIMEOUT=10"}, []string{"chat", "127.0.0.1:1"},
			[]string{"PASSERELLE_CHAT_WRITE_TIMEOUT: 10 " + noUnit}},
		{"chat write timeout for serve", []string{"PASSERELLE_CHAT_WRITE_TIMEOUT=10"}, []string{"serve"},
			[]string{"PASSERELLE_CHAT_WRITE_TIMEOUT: 10 " + noUnit}},
		{"typed word", []string{"PASSERELLE_ADMIN_TLS_MODE=sometimes"}, []string{"serve"},
			[]string{`PASSERELLE_ADMIN_TLS_MODE: "sometimes": want local, acme, files or off`}},
		{"several at once, sorted", []string{"PASSERELLE_LIMITS_HANDSHAKE_TIMEOUT=soon", "PASSERELLE_ACME_AGREE=yes", "PASSERELLE_CHAT_FLOOD_RATE=fast"}, []string{"ca", "path"},
			[]string{`PASSERELLE_ACME_AGREE: "yes": want true or false`,
				`PASSERELLE_CHAT_FLOOD_RATE: "fast": want a number`,
				`PASSERELLE_LIMITS_HANDSHAKE_TIMEOUT: "soon" is not a duration: write one such as 10s, 1m30s or 500ms`}},
		{"good values", []string{"PASSERELLE_CHECK_TIMEOUT=10s", "PASSERELLE_TESTBED_BASE_PORT=12000", "PASSERELLE_ACME_AGREE=true",
			"PASSERELLE_ADMIN_TLS_CLIENT_AUTH=request", "PASSERELLE_WEBSOCKET_ORIGINS=https://a.example,https://b.example"}, []string{"version"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(bin, append([]string{"--data-dir", dir}, tt.args...)...)
			cmd.Env = append([]string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}, tt.env...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("%v with good values: %v\n%s", tt.args, err, stderr.String())
				}
				return
			}
			want := "passerelle: configuration environment:\n  " + strings.Join(tt.want, "\n  ") + "\n"
			code := -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != 1 || stderr.String() != want || stdout.String() != "" {
				t.Fatalf("exit %d (%v), stdout %q, stderr:\n%s\nwant exit 1 and:\n%s", code, err, stdout.String(), stderr.String(), want)
			}
		})
	}
}
