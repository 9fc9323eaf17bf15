package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spf13/viper"
)

// TestServeConfigErrors feeds serve bad configuration files and checks the
// exact message the user reads.
func TestServeConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"bad address", `
listeners:
  - address: "10000"
    service: chat
`, `listeners[0].address "10000": want host:port`},
		{"unknown service", `
listeners:
  - address: 127.0.0.1:0
    service: irc
`, `listeners[0].service "irc": want chat, envoie or echo`},
		{"unknown tls mode", `
listeners:
  - address: 127.0.0.1:0
    service: chat
    tls: {mode: sometimes}
`, `listeners[0].tls.mode "sometimes": want local, acme, files or off`},
		{"files without key", `
listeners:
  - address: 127.0.0.1:0
    service: chat
    tls: {mode: files, cert_file: a.pem}
`, `listeners[0].tls: files mode needs both cert_file and key_file`},
		{"acme without agreement", `
listeners:
  - address: 127.0.0.1:0
    service: chat
    tls: {mode: acme, names: [chat.example.org]}
`, `listeners[0].tls.mode acme: set acme.agree: true to accept the ACME CA's terms of service`},
		{"acme without names", `
acme: {agree: true}
listeners:
  - address: 127.0.0.1:0
    service: chat
    tls: {mode: acme}
`, `listeners[0].tls.names: acme mode needs at least one public DNS name`},
		{"client auth on plain", `
listeners:
  - address: 127.0.0.1:0
    service: chat
    tls: {mode: "off", client_auth: require}
`, `listeners[0].tls.client_auth "require": needs TLS (mode is off)`},
		{"unknown client auth", `
listeners:
  - address: 127.0.0.1:0
    service: chat
    tls: {client_auth: maybe}
`, `listeners[0].tls.client_auth "maybe": want none, request or require`},
		{"root on chat", `
listeners:
  - address: 127.0.0.1:0
    service: chat
    root: /srv
`, `listeners[0].root: only an envoie listener serves a folder`},
		{"duplicate address", `
listeners:
  - {address: "127.0.0.1:7000", service: chat}
  - {address: "127.0.0.1:7000", service: envoie}
`, `listeners[1].address "127.0.0.1:7000": already used by listeners[0]`},
		{"empty listeners", `
listeners: []
`, `listeners: no listener configured`},
		{"acme port", `
acme: {tls_alpn_port: 70000}
`, `acme.tls_alpn_port 70000: want a port between 1 and 65535 (0: the default)`},
		{"tiny max message", `
chat: {max_message: 1}
`, `chat.max_message 1: want at least 2 bytes`},
		{"queue below message", `
chat: {max_message: 1000, queue_bytes: 10}
`, `chat.queue_bytes 10: want at least chat.max_message (1000)`},
		{"policy wait", `
chat: {policy_wait: 0s}
`, `chat.policy_wait 0s: want a positive duration`},
		{"bad policy file", `
policy: {file: /dev/null}
listeners:
  - {address: "127.0.0.1:0", service: chat}
`, `policy.file /dev/null: `},
		{"gc percent", `
runtime: {gc_percent: 0}
`, `runtime.gc_percent 0: want at least 1 (Go's default is 100)`},
		{"max conns", `
limits: {max_conns: 0}
`, `limits.max_conns 0: want at least 1`},
		{"handshake timeout", `
limits: {handshake_timeout: 0s}
`, `limits.handshake_timeout 0s: want a positive duration`},
		{"policy listen", `
policy: {listen: "843"}
`, `policy.listen "843": want host:port (usually :843)`},
		{"bad allow pattern", `
listeners:
  - address: 127.0.0.1:0
    service: chat
    tls: {client_auth: require, allow: {spki_pins: ["not base64!"]}}
`, `listener 127.0.0.1:0: tls.allow: `},
		{"allow-list without client auth", `
listeners:
  - address: 127.0.0.1:0
    service: chat
    tls: {allow: {common_names: [alice]}}
`, `listeners[0].tls.allow: an allow-list needs tls.client_auth request or require`},
		{"missing client CA", `
listeners:
  - address: 127.0.0.1:0
    service: chat
    tls: {client_auth: require, client_ca_file: /nonexistent/ca.pem}
`, `listener 127.0.0.1:0: tls.client_ca_file: open /nonexistent/ca.pem: no such file or directory`},
		{"missing assets folder", `
listeners:
  - address: 127.0.0.1:0
    service: envoie
    root: /nonexistent/assets
`, `listener 127.0.0.1:0: assets: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "passerelle.yaml")
			if err := os.WriteFile(file, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := runCLI(t, "--data-dir", dir, "--config", file, "serve")
			if err == nil {
				t.Fatalf("serve accepted the configuration; want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

// TestServeConfigFileMissing names the file that could not be read.
func TestServeConfigFileMissing(t *testing.T) {
	_, _, err := runCLI(t, "--config", "/nonexistent/passerelle.yaml", "serve")
	want := "read config /nonexistent/passerelle.yaml: open /nonexistent/passerelle.yaml: no such file or directory"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}

// TestExampleConfigsValidate keeps configs/ true: every example serve
// configuration decodes and validates.
func TestExampleConfigsValidate(t *testing.T) {
	for _, name := range []string{"passerelle.yaml", "acme.yaml", "mtls.yaml"} {
		t.Run(name, func(t *testing.T) {
			a := &app{v: viper.New()}
			a.v.SetConfigFile(filepath.Join("..", "..", "configs", name))
			if err := a.v.ReadInConfig(); err != nil {
				t.Fatal(err)
			}
			setServeDefaults(a.v)
			var cfg serveConfig
			if err := a.v.Unmarshal(&cfg); err != nil {
				t.Fatal(err)
			}
			cfg.normalize()
			if err := cfg.validate(); err != nil {
				t.Fatalf("configs/%s does not validate:\n%v", name, err)
			}
			if len(cfg.Listeners) == 0 {
				t.Fatalf("configs/%s declares no listener", name)
			}
		})
	}
}

// TestGCPercent checks that serve applies runtime.gc_percent, and leaves
// the collector alone when the operator set Go's own GOGC.
func TestGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	log := slog.New(slog.DiscardHandler)

	t.Setenv("GOGC", "") // registers the restore of any GOGC the run has
	os.Unsetenv("GOGC")
	setGCPercent(37, log)
	if got := debug.SetGCPercent(100); got != 37 {
		t.Fatalf("GC percent %d after runtime.gc_percent 37", got)
	}

	t.Setenv("GOGC", "80")
	setGCPercent(37, log)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GC percent %d with GOGC set; runtime.gc_percent must not override it", got)
	}
}
