package serve

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/protocol/policy"
	"github.com/passerelle/passerelle/secure"
	"github.com/passerelle/passerelle/secure/allow"
	"github.com/passerelle/passerelle/web"
)

// Config is the whole configuration of `passerelle serve`, decoded from
// viper (file, environment, flags) into plain structs. Its defaults are the
// library packages' own (setServeDefaults); it is validated whole before
// anything happens (validate, then prepare), then turned into the library
// packages' config structs.
type Config struct {
	DataDir   string           `mapstructure:"data_dir"`
	Listeners []listenerConfig `mapstructure:"listeners"`
	ACME      acmeConfig       `mapstructure:"acme"`
	Chat      chatConfig       `mapstructure:"chat"`
	Limits    limitsConfig     `mapstructure:"limits"`
	Policy    policyConfig     `mapstructure:"policy"`
	Runtime   runtimeConfig    `mapstructure:"runtime"`
	WebSocket websocketConfig  `mapstructure:"websocket"`
	Admin     adminConfig      `mapstructure:"admin"`
	Cluster   clusterConfig    `mapstructure:"cluster"`
}

type websocketConfig struct {
	// Origins are the web pages allowed to open a WebSocket; nil means
	// web.DefaultOrigins.
	Origins []string `mapstructure:"origins"`
	// PingInterval is how often an idle WebSocket client is pinged; one
	// silent for two intervals is closed.
	PingInterval time.Duration `mapstructure:"ping_interval"`
}

type runtimeConfig struct {
	GCPercent int `mapstructure:"gc_percent"`
	// GCFloor is the heap, in bytes, that the collector lets the process
	// reach before gc_percent applies (gc.go); 0 turns it off.
	GCFloor int64 `mapstructure:"gc_floor"`
	// ReleaseAfter is how long the process must allocate little before
	// the heap it does not use is given back to the system (release.go);
	// 0 turns it off.
	ReleaseAfter time.Duration `mapstructure:"release_after"`
}

type listenerConfig struct {
	Address string `mapstructure:"address"`
	Service string `mapstructure:"service"`
	Root    string `mapstructure:"root"`
	// AllowDotfiles serves names with a leading dot in any element from
	// Root (envoie.WithDotfiles); off, they are answered as missing.
	AllowDotfiles bool      `mapstructure:"allow_dotfiles"`
	TLS           tlsConfig `mapstructure:"tls"`
	// ProxyProtocol are the load balancers (CIDR prefixes or addresses)
	// whose connections start with a PROXY protocol header.
	ProxyProtocol []string `mapstructure:"proxy_protocol"`

	// addressFrom and rootFrom name the flag (or key) the address and the
	// root came from when it was not this entry of listeners, so that an
	// error names what the user wrote: "--chat-address", "--assets".
	addressFrom, rootFrom string
	// key names the row in messages: "listeners[2]", "policy.listen",
	// "admin" (set by table).
	key string
}

// table is serve's listener table: the admin listener when admin.address
// is set, then every entry of Listeners (the master policy listener
// among them), each named for messages. Every row goes through the same
// steps and the same builder.
func (c *Config) table() []listenerConfig {
	var rows []listenerConfig
	if c.Admin.Address != "" {
		rows = append(rows, c.Admin.row())
	}
	for i, l := range c.Listeners {
		l.key = fmt.Sprintf("listeners[%d]", i)
		if l.Service == servicePolicy {
			l.key = "policy.listen"
		}
		rows = append(rows, l)
	}
	return rows
}

// addressKey is the name of the setting that gave listener i its address.
func (l listenerConfig) addressKey(i int) string {
	if l.addressFrom != "" {
		return l.addressFrom
	}
	return fmt.Sprintf("listeners[%d].address", i)
}

// rootKey is the name of the setting that gave listener where its root.
func (l listenerConfig) rootKey(where string) string {
	if l.rootFrom != "" {
		return l.rootFrom
	}
	return where + ".root"
}

type tlsConfig struct {
	// Mode is where the certificate comes from; empty: the listener's
	// default (local for a service, off for admin), set by normalize.
	Mode         certs.TLSMode     `mapstructure:"mode"`
	Names        []string          `mapstructure:"names"`
	CertFile     string            `mapstructure:"cert_file"`
	KeyFile      string            `mapstructure:"key_file"`
	ClientAuth   secure.ClientAuth `mapstructure:"client_auth"`
	ClientCAFile string            `mapstructure:"client_ca_file"`
	Allow        allow.List        `mapstructure:"allow"`
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
	// SlowReceiverTimeout is how long a receiver may leave its queue full
	// with no write progress (its senders waiting) before it is dropped;
	// 0 means WriteTimeout.
	SlowReceiverTimeout time.Duration `mapstructure:"slow_receiver_timeout"`
	// PolicyWait is how long the front door waits for a silent client's
	// first bytes before it takes it for a raw client; a chat client is a
	// member meanwhile, and what reaches it is written then.
	PolicyWait time.Duration `mapstructure:"policy_wait"`
	// ParkAfter is how long a chat client may be quiet before its reader
	// goroutine returns until it sends again; 0 means never.
	ParkAfter time.Duration `mapstructure:"park_after"`
}

type limitsConfig struct {
	MaxConns           int           `mapstructure:"max_conns"`
	MaxConnsPerAddress int           `mapstructure:"max_conns_per_address"`
	HandshakeTimeout   time.Duration `mapstructure:"handshake_timeout"`
}

type policyConfig struct {
	File   string `mapstructure:"file"`
	Listen string `mapstructure:"listen"`
}

// defaultGCPercent is serve's garbage-collector target. A relay spends its
// memory on many long-lived idle connections, so it trades some throughput
// for a smaller heap: measured with 10,000 idle TLS clients, 50 instead of
// Go's 100 takes resident memory from about 28 to 23 KiB per connection for
// about 15% less fan-out (docs/chat.md).
const defaultGCPercent = 50

// setServeDefaults registers every serve key's default, read from the
// package that owns the setting, so that the file, the environment and
// flags all override the same values.
func setServeDefaults(v *viper.Viper) {
	v.SetDefault("acme.ca", certs.DefaultACMECA)
	v.SetDefault("chat.max_message", hub.DefaultMaxMessage)
	v.SetDefault("chat.queue_bytes", hub.DefaultQueueBytes)
	v.SetDefault("chat.flood_rate", hub.DefaultFloodRate)
	v.SetDefault("chat.flood_burst", hub.DefaultFloodBurst)
	v.SetDefault("chat.write_timeout", hub.DefaultWriteTimeout)
	v.SetDefault("chat.policy_wait", policy.DefaultWait)
	v.SetDefault("chat.park_after", hub.DefaultParkAfter)
	v.SetDefault("websocket.ping_interval", web.DefaultPingInterval)
	v.SetDefault("runtime.gc_percent", defaultGCPercent)
	v.SetDefault("runtime.gc_floor", defaultGCFloor)
	v.SetDefault("runtime.release_after", defaultReleaseAfter)
	v.SetDefault("limits.max_conns", secure.DefaultMaxConns)
	v.SetDefault("limits.max_conns_per_address", 0) // secure.NewLimiter's rule
	v.SetDefault("limits.handshake_timeout", secure.DefaultHandshakeTimeout)
}

// defaultListeners is the zero-configuration set: the chat relay on the
// seeds' port and the asset stream beside it, both over TLS on loopback.
func defaultListeners(chatAddr, assetsAddr, plainAddr, echoAddr string) []listenerConfig {
	ls := []listenerConfig{
		{Address: chatAddr, Service: serviceChat, addressFrom: "--chat-address"},
		{Address: assetsAddr, Service: serviceEnvoie, addressFrom: "--assets-address"},
	}
	if plainAddr != "" {
		ls = append(ls, listenerConfig{Address: plainAddr, Service: serviceChat, TLS: tlsConfig{Mode: certs.ModeOff}, addressFrom: "--plain-address"})
	}
	if echoAddr != "" {
		ls = append(ls, listenerConfig{Address: echoAddr, Service: serviceEcho, addressFrom: "--echo-address"})
	}
	var out []listenerConfig
	for _, l := range ls {
		if l.Address != "" {
			out = append(out, l)
		}
	}
	return out
}

// normalize fills a tls block's defaults: mode (when unset) and the names
// of local mode.
func (t *tlsConfig) normalize(mode certs.TLSMode) {
	if t.Mode == "" {
		t.Mode = mode
	}
	if t.Mode == certs.ModeLocal && len(t.Names) == 0 {
		t.Names = certs.DefaultLocalNames()
	}
}

// normalize fills per-listener defaults. Unknown words are left as they
// are, for validate to name.
func (c *Config) normalize() {
	for i := range c.Listeners {
		l := &c.Listeners[i]
		l.Service = strings.ToLower(strings.TrimSpace(l.Service))
		l.TLS.normalize(certs.ModeLocal)
	}
}

// validate checks every field a user can get wrong and says which one, all
// at once, before anything is created, ordered or bound.
func (c *Config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Listeners) == 0 {
		add("listeners: no listener configured")
	}
	seen := map[string]int{}
	for i := range c.Listeners {
		errs = append(errs, c.validateListener(i, seen)...)
	}
	for _, p := range []struct {
		key  string
		port int
	}{{"acme.tls_alpn_port", c.ACME.TLSALPNPort}, {"acme.http_port", c.ACME.HTTPPort}} {
		if p.port < 0 || p.port > 65535 {
			add("%s %d: want a port between 1 and 65535 (0: the default)", p.key, p.port)
		}
	}
	if err := certs.CheckACMEConfig(certs.ACMEConfig{CA: c.ACME.CA}); err != nil {
		add("%v", err)
	}
	if c.Chat.MaxMessage < 2 {
		add("chat.max_message %d: want at least 2 bytes", c.Chat.MaxMessage)
	}
	if c.Chat.QueueBytes < c.Chat.MaxMessage {
		add("chat.queue_bytes %d: want at least chat.max_message (%d)", c.Chat.QueueBytes, c.Chat.MaxMessage)
	}
	if c.Chat.FloodRate < 0 || c.Chat.FloodBurst < 0 {
		add("chat.flood_rate and chat.flood_burst: want 0 (no limit) or more")
	}
	positive := []struct {
		key string
		d   time.Duration
	}{{"chat.write_timeout", c.Chat.WriteTimeout}, {"chat.policy_wait", c.Chat.PolicyWait}, {"limits.handshake_timeout", c.Limits.HandshakeTimeout}}
	for _, p := range positive {
		if p.d <= 0 {
			add("%s %s: want a positive duration", p.key, p.d)
		}
	}
	if c.Runtime.GCPercent < 1 {
		add("runtime.gc_percent %d: want at least 1 (Go's default is 100)", c.Runtime.GCPercent)
	}
	if c.Runtime.ReleaseAfter < 0 {
		add("runtime.release_after %s: want 0 (never) or a positive duration", c.Runtime.ReleaseAfter)
	}
	if c.Runtime.GCFloor < 0 {
		add("runtime.gc_floor %d: want 0 (off) or a number of bytes", c.Runtime.GCFloor)
	}
	if c.Limits.MaxConns < 1 {
		add("limits.max_conns %d: want at least 1", c.Limits.MaxConns)
	}
	if c.Chat.ParkAfter < 0 {
		add("chat.park_after %s: want 0 (never) or a positive duration", c.Chat.ParkAfter)
	}
	if c.Chat.SlowReceiverTimeout < 0 {
		add("chat.slow_receiver_timeout %s: want 0 (chat.write_timeout) or a positive duration", c.Chat.SlowReceiverTimeout)
	}
	if c.Limits.MaxConnsPerAddress < 0 {
		add("limits.max_conns_per_address %d: want 0 (the default rule) or more", c.Limits.MaxConnsPerAddress)
	}
	if c.WebSocket.PingInterval <= 0 {
		add("websocket.ping_interval %s: want a positive duration", c.WebSocket.PingInterval)
	}
	if _, err := web.NewOrigins(c.WebSocket.Origins, nil); err != nil {
		add("websocket.%v", err)
	}
	if c.Policy.Listen != "" {
		if err := checkAddress(c.Policy.Listen); err != nil {
			add("policy.listen %q: %v (usually :843)", c.Policy.Listen, err)
		}
	}
	errs = append(errs, c.Admin.validate(c.ACME.Agree)...)
	if err := c.Cluster.validate(c.DataDir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// validateListener checks entry i of listeners, each error naming its key;
// seen holds the addresses of the entries before it.
func (c *Config) validateListener(i int, seen map[string]int) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	l := c.Listeners[i]
	where := fmt.Sprintf("listeners[%d]", i)
	services := serviceTable()
	if err := checkAddress(l.Address); err != nil {
		if l.Service != servicePolicy { // policy.listen is checked below, with a hint
			add("%s %q: %v", l.addressKey(i), l.Address, err)
		}
	} else if j, dup := seen[l.Address]; dup && !strings.HasSuffix(l.Address, ":0") {
		add("%s %q: already used by %s", l.addressKey(i), l.Address, c.Listeners[j].addressKey(j))
	} else {
		seen[l.Address] = i
	}
	if _, ok := services[l.Service]; !ok || l.Service == serviceAdmin {
		add("%s.service %q: want %s", where, l.Service, serviceNames())
	} else if l.Root != "" && l.Service != serviceEnvoie {
		add("%s: only an envoie listener serves a folder", l.rootKey(where))
	} else if l.AllowDotfiles && l.Root == "" {
		add("%s.allow_dotfiles: only an envoie listener with a root serves dotfiles", where)
	}
	errs = append(errs, l.TLS.validate(where, "", c.ACME.Agree)...)
	for j, p := range l.ProxyProtocol {
		if _, err := secure.ParseProxyPrefix(p); err != nil {
			add("%s.proxy_protocol[%d] %v", where, j, err)
		}
	}
	return errs
}

// validate checks a tls block, the same for every row of the listener
// table: where is the row's key ("listeners[0]", "admin"), and sib the
// prefix a message gives a key of the same block ("" for an entry of
// listeners, which the user reads as its own; "admin." for the admin
// block). acmeAgreed is acme.agree.
func (t tlsConfig) validate(where, sib string, acmeAgreed bool) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch t.Mode {
	case certs.ModeLocal, certs.ModeACME:
		if t.Mode == certs.ModeACME && len(t.Names) == 0 {
			add("%s.tls.names: acme mode needs at least one public DNS name", where)
		} else if err := certs.CheckNames(t.Mode, t.Names); err != nil {
			add("%s.%v", where, err)
		}
		if t.Mode == certs.ModeACME && !acmeAgreed {
			add("%s.tls.mode acme: set acme.agree: true to accept the ACME CA's terms of service", where)
		}
	case certs.ModeFiles:
		if t.CertFile == "" || t.KeyFile == "" {
			add("%s.tls: files mode needs both cert_file and key_file", where)
		}
	}
	switch {
	case t.ClientAuth != secure.ClientAuthNone && t.Mode == certs.ModeOff:
		add("%s.tls.client_auth %q: needs TLS (%stls.mode is off)", where, t.ClientAuth, sib)
	case t.ClientAuth == secure.ClientAuthRequire && t.ClientCAFile == "":
		// Without a CA of its own the listener would let in anyone
		// with a certificate from any public CA.
		add("%s.tls.client_auth require: set %stls.client_ca_file to the CA that issues your clients' certificates", where, sib)
	}
	if !t.Allow.Empty() {
		if t.ClientAuth == secure.ClientAuthNone {
			// No client would ever send a certificate, so the list
			// would refuse everyone.
			add("%s.tls.allow: an allow-list needs %stls.client_auth request or require", where, sib)
		} else if err := t.Allow.Validate(); err != nil {
			add("%s.tls.allow: %v", where, err)
		}
	}
	return errs
}

// checkAddress checks a listen address: host:port with a port from 0 to
// 65535 (0: any free port) and a host that is empty (every address), an IP
// address or a name.
func checkAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port, such as 127.0.0.1:10000 or :10000")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q: want a number from 0 to 65535", port)
	}
	if host != "" && net.ParseIP(host) == nil {
		if kind, _, err := certs.ClassifyName(host); err != nil || kind != certs.NameDNS {
			return fmt.Errorf("host %q: want an IP address or a host name", host)
		}
	}
	return nil
}
