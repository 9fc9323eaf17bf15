package main

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/passerelle/passerelle/secure/allow"
)

// serveConfig is the whole configuration of `passerelle serve`, decoded from
// viper (file, environment, flags) into plain structs. It is validated once,
// then turned into the library packages' own config structs.
type serveConfig struct {
	DataDir   string           `mapstructure:"data_dir"`
	Listeners []listenerConfig `mapstructure:"listeners"`
	ACME      acmeConfig       `mapstructure:"acme"`
	Chat      chatConfig       `mapstructure:"chat"`
	Limits    limitsConfig     `mapstructure:"limits"`
	Policy    policyConfig     `mapstructure:"policy"`
	Runtime   runtimeConfig    `mapstructure:"runtime"`
}

type runtimeConfig struct {
	GCPercent int `mapstructure:"gc_percent"`
}

type listenerConfig struct {
	Address string    `mapstructure:"address"`
	Service string    `mapstructure:"service"`
	Root    string    `mapstructure:"root"`
	TLS     tlsConfig `mapstructure:"tls"`
}

type tlsConfig struct {
	Mode         string     `mapstructure:"mode"`
	Names        []string   `mapstructure:"names"`
	CertFile     string     `mapstructure:"cert_file"`
	KeyFile      string     `mapstructure:"key_file"`
	ClientAuth   string     `mapstructure:"client_auth"`
	ClientCAFile string     `mapstructure:"client_ca_file"`
	Allow        allow.List `mapstructure:"allow"`
}

type acmeConfig struct {
	CA          string `mapstructure:"ca"`
	Email       string `mapstructure:"email"`
	Agree       bool   `mapstructure:"agree"`
	CARoot      string `mapstructure:"ca_root"`
	TLSALPNPort int    `mapstructure:"tls_alpn_port"`
	HTTPPort    int    `mapstructure:"http_port"`
	ListenHost  string `mapstructure:"listen_host"`
	Profile     string `mapstructure:"profile"`
}

type chatConfig struct {
	MaxMessage   int           `mapstructure:"max_message"`
	QueueBytes   int           `mapstructure:"queue_bytes"`
	FloodRate    float64       `mapstructure:"flood_rate"`
	FloodBurst   int           `mapstructure:"flood_burst"`
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
	PolicyWait   time.Duration `mapstructure:"policy_wait"`
}

type limitsConfig struct {
	MaxConns         int           `mapstructure:"max_conns"`
	HandshakeTimeout time.Duration `mapstructure:"handshake_timeout"`
}

type policyConfig struct {
	File   string `mapstructure:"file"`
	Listen string `mapstructure:"listen"`
}

// Service kinds a listener can run.
const (
	serviceChat   = "chat"
	serviceEnvoie = "envoie"
	serviceEcho   = "echo"
)

// defaultGCPercent is serve's garbage-collector target. A relay spends its
// memory on many long-lived idle connections, so it trades some throughput
// for a smaller heap: measured with 10,000 idle TLS clients, 50 instead of
// Go's 100 takes resident memory from about 28 to 23 KiB per connection for
// about 15% less fan-out (docs/chat.md).
const defaultGCPercent = 50

// defaultNames are the names the local CA certifies when a local-mode
// listener names none: every way a client on this machine reaches loopback.
var defaultNames = []string{"localhost", "127.0.0.1", "::1"}

// setServeDefaults registers every serve key's default so that the file, the
// environment and flags all override the same values.
func setServeDefaults(v *viper.Viper) {
	v.SetDefault("acme.ca", "https://acme-v02.api.letsencrypt.org/directory")
	v.SetDefault("chat.max_message", 64<<10)
	v.SetDefault("chat.queue_bytes", 256<<10)
	v.SetDefault("chat.flood_rate", 200.0)
	v.SetDefault("chat.flood_burst", 400)
	v.SetDefault("chat.write_timeout", 10*time.Second)
	v.SetDefault("chat.policy_wait", 500*time.Millisecond)
	v.SetDefault("runtime.gc_percent", defaultGCPercent)
	v.SetDefault("limits.max_conns", 10000)
	v.SetDefault("limits.handshake_timeout", 10*time.Second)
}

// defaultListeners is the zero-configuration set: the chat relay on the
// seeds' port and the asset stream beside it, both over TLS on loopback.
func defaultListeners(chatAddr, assetsAddr, plainAddr, echoAddr string) []listenerConfig {
	ls := []listenerConfig{
		{Address: chatAddr, Service: serviceChat},
		{Address: assetsAddr, Service: serviceEnvoie},
	}
	if plainAddr != "" {
		ls = append(ls, listenerConfig{Address: plainAddr, Service: serviceChat, TLS: tlsConfig{Mode: "off"}})
	}
	if echoAddr != "" {
		ls = append(ls, listenerConfig{Address: echoAddr, Service: serviceEcho})
	}
	var out []listenerConfig
	for _, l := range ls {
		if l.Address != "" {
			out = append(out, l)
		}
	}
	return out
}

// normalize fills per-listener defaults.
func (c *serveConfig) normalize() {
	for i := range c.Listeners {
		l := &c.Listeners[i]
		l.Service = strings.ToLower(strings.TrimSpace(l.Service))
		if l.TLS.Mode == "" {
			l.TLS.Mode = "local"
		}
		if l.TLS.ClientAuth == "" {
			l.TLS.ClientAuth = "none"
		}
		if l.TLS.Mode == "local" && len(l.TLS.Names) == 0 {
			l.TLS.Names = slices.Clone(defaultNames)
		}
	}
}

// validate checks every field a user can get wrong and says which one.
func (c *serveConfig) validate() error {
	var errs []error
	if len(c.Listeners) == 0 {
		errs = append(errs, errors.New("listeners: no listener configured"))
	}
	seen := map[string]int{}
	for i, l := range c.Listeners {
		where := fmt.Sprintf("listeners[%d]", i)
		if _, port, err := net.SplitHostPort(l.Address); err != nil {
			errs = append(errs, fmt.Errorf("%s.address %q: want host:port", where, l.Address))
		} else if j, dup := seen[l.Address]; dup && port != "0" {
			errs = append(errs, fmt.Errorf("%s.address %q: already used by listeners[%d]", where, l.Address, j))
		} else {
			seen[l.Address] = i
		}
		switch l.Service {
		case serviceChat, serviceEcho:
			if l.Root != "" {
				errs = append(errs, fmt.Errorf("%s.root: only an envoie listener serves a folder", where))
			}
		case serviceEnvoie:
		default:
			errs = append(errs, fmt.Errorf("%s.service %q: want chat, envoie or echo", where, l.Service))
		}
		switch l.TLS.Mode {
		case "local", "off":
		case "acme":
			if len(l.TLS.Names) == 0 {
				errs = append(errs, fmt.Errorf("%s.tls.names: acme mode needs at least one public DNS name", where))
			}
			if !c.ACME.Agree {
				errs = append(errs, fmt.Errorf("%s.tls.mode acme: set acme.agree: true to accept the ACME CA's terms of service", where))
			}
		case "files":
			if l.TLS.CertFile == "" || l.TLS.KeyFile == "" {
				errs = append(errs, fmt.Errorf("%s.tls: files mode needs both cert_file and key_file", where))
			}
		default:
			errs = append(errs, fmt.Errorf("%s.tls.mode %q: want local, acme, files or off", where, l.TLS.Mode))
		}
		switch l.TLS.ClientAuth {
		case "none":
		case "request", "require":
			if l.TLS.Mode == "off" {
				errs = append(errs, fmt.Errorf("%s.tls.client_auth %q: needs TLS (mode is off)", where, l.TLS.ClientAuth))
			}
		default:
			errs = append(errs, fmt.Errorf("%s.tls.client_auth %q: want none, request or require", where, l.TLS.ClientAuth))
		}
		if !l.TLS.Allow.Empty() && l.TLS.ClientAuth == "none" {
			// No client would ever send a certificate, so the list would
			// refuse everyone.
			errs = append(errs, fmt.Errorf("%s.tls.allow: an allow-list needs tls.client_auth request or require", where))
		}
	}
	for _, p := range []struct {
		key  string
		port int
	}{{"acme.tls_alpn_port", c.ACME.TLSALPNPort}, {"acme.http_port", c.ACME.HTTPPort}} {
		if p.port < 0 || p.port > 65535 {
			errs = append(errs, fmt.Errorf("%s %d: want a port between 1 and 65535 (0: the default)", p.key, p.port))
		}
	}
	if c.Chat.MaxMessage < 2 {
		errs = append(errs, fmt.Errorf("chat.max_message %d: want at least 2 bytes", c.Chat.MaxMessage))
	}
	if c.Chat.QueueBytes < c.Chat.MaxMessage {
		errs = append(errs, fmt.Errorf("chat.queue_bytes %d: want at least chat.max_message (%d)", c.Chat.QueueBytes, c.Chat.MaxMessage))
	}
	if c.Chat.FloodRate < 0 || c.Chat.FloodBurst < 0 {
		errs = append(errs, errors.New("chat.flood_rate and chat.flood_burst: want 0 (no limit) or more"))
	}
	if c.Chat.PolicyWait <= 0 {
		errs = append(errs, fmt.Errorf("chat.policy_wait %s: want a positive duration", c.Chat.PolicyWait))
	}
	if c.Runtime.GCPercent < 1 {
		errs = append(errs, fmt.Errorf("runtime.gc_percent %d: want at least 1 (Go's default is 100)", c.Runtime.GCPercent))
	}
	if c.Limits.MaxConns < 1 {
		errs = append(errs, fmt.Errorf("limits.max_conns %d: want at least 1", c.Limits.MaxConns))
	}
	if c.Limits.HandshakeTimeout <= 0 {
		errs = append(errs, fmt.Errorf("limits.handshake_timeout %s: want a positive duration", c.Limits.HandshakeTimeout))
	}
	if c.Policy.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Policy.Listen); err != nil {
			errs = append(errs, fmt.Errorf("policy.listen %q: want host:port (usually :843)", c.Policy.Listen))
		}
	}
	return errors.Join(errs...)
}
