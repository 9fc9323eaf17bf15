package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/passerelle/passerelle/internal/serve"
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
`, `listeners[0].service "irc": want chat, echo, envoie or policy`},
		{"unknown tls mode", `
listeners:
  - address: 127.0.0.1:0
    service: chat
    tls: {mode: sometimes}
`, `line 5: listeners[0].tls.mode: "sometimes": want local, acme, files or off`},
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
`, `listeners[0].tls.client_auth "require": needs TLS (tls.mode is off)`},
		{"unknown client auth", `
listeners:
  - address: 127.0.0.1:0
    service: chat
    tls: {client_auth: maybe}
`, `line 5: listeners[0].tls.client_auth: "maybe": want none, request or require`},
		{"root on chat", `
listeners:
  - address: 127.0.0.1:0
    service: chat
    root: /srv
`, `listeners[0].root: only an envoie listener serves a folder`},
		{"dotfiles without a folder", `
listeners:
  - address: 127.0.0.1:0
    service: envoie
    allow_dotfiles: true
`, `listeners[0].allow_dotfiles: only an envoie listener with a root serves dotfiles`},
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
		{"park after", `
chat: {park_after: -1s}
`, `chat.park_after -1s: want 0 (never) or a positive duration`},
		{"bad policy file", `
policy: {file: /dev/null}
listeners:
  - {address: "127.0.0.1:0", service: chat}
`, `policy.file /dev/null: `},
		{"gc percent", `
runtime: {gc_percent: 0}
`, `runtime.gc_percent 0: want at least 1 (Go's default is 100)`},
		{"gc floor", `
runtime: {gc_floor: -1}
`, `runtime.gc_floor -1: want 0 (off) or a number of bytes`},
		{"release after", `
runtime: {release_after: -5s}
`, `runtime.release_after -5s: want 0 (never) or a positive duration`},
		{"max conns", `
limits: {max_conns: 0}
`, `limits.max_conns 0: want at least 1`},
		{"handshake timeout", `
limits: {handshake_timeout: 0s}
`, `limits.handshake_timeout 0s: want a positive duration`},
		{"policy listen", `
policy: {listen: "843"}
`, `policy.listen "843": want host:port, such as 127.0.0.1:10000 or :10000 (usually :843)`},
		{"bad allow pattern", `
listeners:
  - address: 127.0.0.1:0
    service: chat
    tls: {client_auth: require, allow: {spki_pins: ["not base64!"]}}
`, `listeners[0].tls.allow: `},
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
`, `listeners[0].tls.client_ca_file: open /nonexistent/ca.pem: no such file or directory`},
		{"proxy_protocol not a prefix", `
listeners:
  - address: 127.0.0.1:0
    service: chat
    proxy_protocol: [10.0.0.0/8, lb.example]
`, `listeners[0].proxy_protocol[1] "lb.example": want an address or a CIDR prefix such as 10.0.0.0/8`},
		{"missing assets folder", `
listeners:
  - address: 127.0.0.1:0
    service: envoie
    root: /nonexistent/assets
`, `listeners[0].root: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := writeConfig(t, dir, tt.yaml)
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

// TestServeFlagErrorsNameTheFlag: a bad address or folder given with a
// flag is reported under that flag's name, not as a listeners[i] key the
// user never wrote.
func TestServeFlagErrorsNameTheFlag(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--chat-address", "127.0.0.1"}, `--chat-address "127.0.0.1": want host:port, such as 127.0.0.1:10000 or :10000`},
		{[]string{"--chat-address", "127.0.0.1:10400", "--assets-address", "127.0.0.1:10400"}, `--assets-address "127.0.0.1:10400": already used by --chat-address`},
		{[]string{"--echo-address", "localhost:99999"}, `--echo-address "localhost:99999": port "99999": want a number from 0 to 65535`},
		{[]string{"--assets", "/nonexistent/assets"}, `--assets: `},
	}
	for _, tt := range tests {
		t.Run(tt.args[0], func(t *testing.T) {
			dir := t.TempDir()
			_, _, err := runCLI(t, append([]string{"--data-dir", dir, "serve"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), "\n"+tt.want) || strings.Contains(err.Error(), "listeners[") {
				t.Fatalf("error:\n%v\nwant a line starting with:\n%s", err, tt.want)
			}
		})
	}
}

// TestConfigFileStrict feeds broken files and checks that each is refused
// before anything happens, with the key's path, its line and plain words.
func TestConfigFileStrict(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"misspelled nested key", `listeners:
  - address: 127.0.0.1:0
    service: chat
    tls:
      client_auht: require
`, []string{"line 5: listeners[0].tls.client_auht: unknown key; did you mean client_auth?"}},
		{"misspelled section key", `chat:
  max_mesage: 10
`, []string{"line 2: chat.max_mesage: unknown key; did you mean max_message?"}},
		{"misspelled section", `chatt:
  max_message: 10
`, []string{"line 1: chatt: unknown key; did you mean chat?"}},
		{"unknown key, nothing near", `chat:
  colour: blue
`, []string{"line 2: chat.colour: unknown key; known keys here: flood_burst, flood_rate, max_message, park_after, policy_wait, queue_bytes, slow_receiver_timeout, write_timeout"}},
		{"bare number for a duration", `chat:
  write_timeout: 10
`, []string{"line 2: chat.write_timeout: 10 has no unit: write a duration such as 10s or 10ms"}},
		{"not a duration", `limits:
  handshake_timeout: soon
`, []string{`line 2: limits.handshake_timeout: "soon" is not a duration: write one such as 10s, 1m30s or 500ms`}},
		{"text for a number", `chat:
  max_message: lots
`, []string{`line 2: chat.max_message: "lots": want a whole number`}},
		{"text for a boolean", `acme:
  agree: yes please
`, []string{`line 2: acme.agree: "yes please": want true or false`}},
		{"mapping for a list", `listeners:
  address: 127.0.0.1:0
`, []string{"line 2: listeners: want a list of entries, each a mapping"}},
		{"value for a list", `listeners:
  - address: 127.0.0.1:0
    tls: {names: localhost}
`, []string{"line 3: listeners[0].tls.names: want a list, such as [a, b]"}},
		{"several at once", `chatt: {}
limits: {max_con: 3, handshake_timeout: 5}
`, []string{
			"line 1: chatt: unknown key; did you mean chat?",
			"line 2: limits.max_con: unknown key; did you mean max_conns?",
			"line 2: limits.handshake_timeout: 5 has no unit: write a duration such as 5s or 5ms",
		}},
		{"not YAML", "listeners: [\n", []string{"not valid YAML: line 1: did not find expected node content"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := writeConfig(t, dir, tt.yaml)
			_, _, err := runCLI(t, "--data-dir", dir, "--config", file, "serve")
			want := "configuration " + file + ":\n  " + strings.Join(tt.want, "\n  ")
			if err == nil || err.Error() != want {
				t.Fatalf("error:\n%v\nwant:\n%s", err, want)
			}
			if _, err := os.Stat(filepath.Join(dir, "ca")); !os.IsNotExist(err) {
				t.Errorf("a refused configuration created the local CA (%v)", err)
			}
		})
	}
}

// TestConfigRefusedBeforeAnything: a configuration whose mistakes only show
// when files are read, or in combinations, is refused with every mistake
// named, before the local CA is created or any address bound.
func TestConfigRefusedBeforeAnything(t *testing.T) {
	dir := t.TempDir()
	yaml := `listeners:
  - address: 127.0.0.1:99999
    service: chat
  - address: 127.0.0.1:0
    service: chat
    tls: {client_auth: require}
  - address: 127.0.0.1:0
    service: envoie
    root: /nonexistent/assets
    tls: {client_auth: request, client_ca_file: /nonexistent/ca.pem}
`
	file := writeConfig(t, dir, yaml)
	_, _, err := runCLI(t, "--data-dir", dir, "--config", file, "serve")
	want := []string{
		`listeners[0].address "127.0.0.1:99999": port "99999": want a number from 0 to 65535`,
		`listeners[1].tls.client_auth require: set tls.client_ca_file to the CA that issues your clients' certificates`,
	}
	if err == nil || err.Error() != "configuration:\n"+strings.Join(want, "\n") {
		t.Fatalf("error:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	// Once those are fixed, the files are read, still before anything.
	yaml = strings.Replace(yaml, "99999", "0", 1)
	yaml = strings.Replace(yaml, "{client_auth: require}", "{client_auth: request}", 1)
	writeConfig(t, dir, yaml)
	_, _, err = runCLI(t, "--data-dir", dir, "--config", file, "serve")
	want = []string{
		`listeners[2].tls.client_ca_file: open /nonexistent/ca.pem: no such file or directory`,
		`listeners[2].root: `,
	}
	if err == nil || !strings.HasPrefix(err.Error(), "configuration:\n"+strings.Join(want, "\n")) {
		t.Fatalf("error:\n%v\nwant it to start with:\n%s", err, strings.Join(want, "\n"))
	}
	if _, err := os.Stat(filepath.Join(dir, "ca")); !os.IsNotExist(err) {
		t.Errorf("a refused configuration created the local CA (%v)", err)
	}
}

// TestEnvironmentStrict: a PASSERELLE_* variable that names no setting stops
// the program rather than being ignored.
func TestEnvironmentStrict(t *testing.T) {
	t.Setenv("PASSERELLE_CHAT_MAX_MESAGE", "10")
	t.Setenv("PASSERELLE_FROBNICATE", "1")
	_, _, err := runCLI(t, "--data-dir", t.TempDir(), "serve")
	want := "configuration environment:\n" +
		"  PASSERELLE_CHAT_MAX_MESAGE: no such setting; did you mean PASSERELLE_CHAT_MAX_MESSAGE?\n" +
		"  PASSERELLE_FROBNICATE: no such setting"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
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
// configuration in the folder, a new one included, passes the strict
// reading and serve's own checks. The testbed's example is run by
// TestTestbedExampleConfig.
func TestExampleConfigsValidate(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "configs", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("configs/*.yaml: %v, %d files", err, len(files))
	}
	for _, file := range files {
		name := filepath.Base(file)
		if name == "testbed.yaml" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			cfg := loadExample(t, name)
			if len(cfg.Listeners) == 0 {
				t.Fatalf("configs/%s declares no listener", name)
			}
		})
	}
}

// loadExample reads configs/name as serve does.
func loadExample(t *testing.T, name string) *serve.Config {
	t.Helper()
	v := viper.New()
	err := serve.ReadSettings(v, serve.Settings{File: filepath.Join("..", "..", "configs", name), Schema: reflect.TypeFor[fileConfig]()})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := serve.Load(v)
	if err != nil {
		t.Fatalf("configs/%s does not validate:\n%v", name, err)
	}
	return cfg
}
