package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/caddyserver/certmagic"
)

// TLSMode says where a listener's certificate comes from (the per-listener
// tls.mode setting).
type TLSMode string

// The TLS modes. ModeOff has no certificate source; the server runs plain
// TCP.
const (
	ModeLocal TLSMode = "local"
	ModeACME  TLSMode = "acme"
	ModeFiles TLSMode = "files"
	ModeOff   TLSMode = "off"
)

// ParseTLSMode accepts a tls.mode value; empty means ModeLocal.
func ParseTLSMode(s string) (TLSMode, error) {
	switch m := TLSMode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return ModeLocal, nil
	case ModeLocal, ModeACME, ModeFiles, ModeOff:
		return m, nil
	default:
		return "", fmt.Errorf("unknown tls.mode %q: want local, acme, files or off", s)
	}
}

// UnmarshalText reads a tls.mode value as a configuration decoder meets
// it. Unlike ParseTLSMode, empty stays empty: what an unset mode means is
// the listener's to say (local for a service listener, off for admin).
func (m *TLSMode) UnmarshalText(text []byte) error {
	s := strings.ToLower(strings.TrimSpace(string(text)))
	if s == "" {
		*m = ""
		return nil
	}
	v, err := ParseTLSMode(s)
	if err != nil {
		return errors.New("want local, acme, files or off")
	}
	*m = v
	return nil
}

// DefaultLocalNames are the names of a local-mode listener that names none:
// the loopback names a local client uses.
func DefaultLocalNames() []string { return []string{"localhost", "127.0.0.1", "::1"} }

// TLSSpec is one listener's tls settings.
type TLSSpec struct {
	// Mode is local (default), acme or files.
	Mode TLSMode
	// Names are the DNS names and IP addresses to get certificates for
	// (local and acme). Local mode defaults to DefaultLocalNames.
	Names []string
	// CertFile and KeyFile are the PEM files of files mode; CertFile holds
	// the leaf followed by its intermediates.
	CertFile string
	KeyFile  string
}

// Source is what a TLS listener needs from certificate management. Plug it
// into secure.ServerConfig (or a tls.Config): GetCertificate picks the
// certificate for each handshake (and answers ACME TLS-ALPN-01 challenges);
// NextProtos must be offered by the server so an ACME server's validation
// handshake can negotiate "acme-tls/1".
type Source struct {
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	NextProtos     []string
	// Mode and Names say what the source serves, for logs.
	Mode  TLSMode
	Names []string
}

// acmeTLS1Protocol is the ALPN protocol of the TLS-ALPN-01 challenge (RFC
// 8737 section 6.2).
const acmeTLS1Protocol = "acme-tls/1"

// Source builds the certificate source of one listener. Certificates are
// ready when it returns: local ones are issued (or loaded from storage),
// ACME ones obtained (or loaded from storage), files read. Local and ACME
// certificates are then renewed in the background until Close; files are
// watched and reloaded when they change.
func (m *Manager) Source(ctx context.Context, spec TLSSpec) (*Source, error) {
	mode := spec.Mode
	if mode == "" {
		mode = ModeLocal
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errors.New("certificate manager is closed")
	}
	switch mode {
	case ModeLocal:
		return m.localSource(ctx, spec.Names)
	case ModeACME:
		return m.acmeSource(ctx, spec.Names)
	case ModeFiles:
		return m.filesSource(spec)
	case ModeOff:
		return nil, errors.New("tls.mode off has no certificate source")
	default:
		_, err := ParseTLSMode(string(mode))
		return nil, err
	}
}

// serverNames checks the names of a local or ACME listener: only DNS names
// and IP addresses identify a TLS server.
func serverNames(mode TLSMode, names []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		kind, norm, err := ClassifyName(n)
		if err != nil {
			return nil, fmt.Errorf("tls.names: %w", err)
		}
		if kind != NameDNS && kind != NameIP {
			return nil, fmt.Errorf("tls.names: %q is not a DNS name or an IP address", n)
		}
		if !seen[norm] {
			seen[norm] = true
			out = append(out, norm)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("tls.mode %s needs tls.names", mode)
	}
	return out, nil
}

// claimNames records which config manages each name, refusing a name that
// another mode already manages: one cache serves one certificate per name.
func (m *Manager) claimNames(cfg *certmagic.Config, mode TLSMode, names []string) error {
	m.cfgMu.Lock()
	defer m.cfgMu.Unlock()
	for _, n := range names {
		if other, ok := m.byName[n]; ok && other != cfg {
			return fmt.Errorf("tls.names: %q is already served in another tls.mode than %s by another listener", n, mode)
		}
	}
	for _, n := range names {
		m.byName[n] = cfg
	}
	return nil
}

// localSource serves certificates from the local CA, managed by certmagic.
func (m *Manager) localSource(ctx context.Context, names []string) (*Source, error) {
	if len(names) == 0 {
		names = DefaultLocalNames()
	}
	names, err := serverNames(ModeLocal, names)
	if err != nil {
		return nil, err
	}
	ca, _, err := m.localCA()
	if err != nil {
		return nil, err
	}
	m.cfgMu.Lock()
	if m.localCfg == nil {
		cfg := m.newCertmagicConfig(nil)
		cfg.Issuers = []certmagic.Issuer{&localIssuer{ca: ca, lifetime: m.cfg.LocalLifetime}}
		// ACME renewal information means nothing to the local CA.
		cfg.DisableARI = true
		m.localCfg = cfg
	}
	cfg := m.localCfg
	m.cfgMu.Unlock()
	if err := m.claimNames(cfg, ModeLocal, names); err != nil {
		return nil, err
	}
	// One certificate for all the names, managed under the first (see
	// localIssuer).
	li := cfg.Issuers[0].(*localIssuer)
	li.setGroup(names)
	if err := m.dropNarrowCert(ctx, li.IssuerKey(), names); err != nil {
		return nil, fmt.Errorf("local certificate: %w", err)
	}
	if err := cfg.ManageSync(ctx, names[:1]); err != nil {
		return nil, fmt.Errorf("local certificate: %w", err)
	}
	// Another local listener with the same first name and fewer names may
	// have put a narrower certificate in the cache already: replace it with
	// one for both listeners' names (the group grew in setGroup).
	if narrow := m.narrowCached(names); len(narrow) > 0 {
		m.cache.Remove(narrow)
		if err := m.dropNarrowCert(ctx, li.IssuerKey(), names); err != nil {
			return nil, fmt.Errorf("local certificate: %w", err)
		}
		if err := cfg.ManageSync(ctx, names[:1]); err != nil {
			return nil, fmt.Errorf("local certificate: %w", err)
		}
	}
	for _, n := range names {
		m.logReady(n, "local", "")
	}
	return &Source{GetCertificate: getCertificate(cfg, names[0]), Mode: ModeLocal, Names: names}, nil
}

// narrowCached lists the cached certificates managed under names[0] that
// do not name all of names.
func (m *Manager) narrowCached(names []string) []string {
	var hashes []string
	for _, c := range m.cache.AllMatchingCertificates(names[0]) {
		if len(c.Names) == 0 || c.Names[0] != names[0] || c.Leaf == nil {
			continue
		}
		for _, n := range names {
			if c.Leaf.VerifyHostname(n) != nil {
				hashes = append(hashes, c.Hash())
				break
			}
		}
	}
	return hashes
}

// dropNarrowCert deletes from storage the local certificate managed under
// names[0] when it does not name all of names (one made by an older
// version, which made one certificate per name, or before tls.names grew),
// so that it is replaced now rather than at its renewal.
func (m *Manager) dropNarrowCert(ctx context.Context, issuerKey string, names []string) error {
	data, err := m.storage.Load(ctx, certmagic.StorageKeys.SiteCert(issuerKey, names[0]))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if certs, err := ParseCertsPEM(data); err == nil && len(certs) > 0 {
		narrow := false
		for _, n := range names {
			narrow = narrow || certs[0].VerifyHostname(n) != nil
		}
		if !narrow {
			return nil
		}
	}
	m.log.Info("replacing the stored local certificate: it does not name every name", "server_name", names[0], "names", names)
	return m.storage.Delete(ctx, certmagic.StorageKeys.CertsSitePrefix(issuerKey, names[0]))
}

// logReady logs the certificate now served for name, once per certificate:
// a second listener with the same names gets the same one, and a line
// already said.
func (m *Manager) logReady(name, mode, origin string) {
	attrs := []any{"server_name", name, "mode", mode}
	serial := ""
	for _, c := range m.cache.AllMatchingCertificates(name) {
		if c.Leaf != nil {
			serial = c.Leaf.SerialNumber.Text(16)
			attrs = append(attrs, "not_after", c.Leaf.NotAfter, "serial", serial)
			break
		}
	}
	m.readyMu.Lock()
	said := serial != "" && m.readyLogged[name] == serial
	if m.readyLogged == nil {
		m.readyLogged = map[string]string{}
	}
	m.readyLogged[name] = serial
	m.readyMu.Unlock()
	if said {
		return
	}
	if origin != "" {
		attrs = append(attrs, "origin", origin)
	}
	m.log.Info("certificate ready", attrs...)
}

// getCertificate serves cfg's certificates. A client asking for a name the
// listener has no certificate for (or for none, on an address that is not
// one of the names) gets the listener's first certificate rather than a
// failed handshake: it can then say exactly what is wrong
// (principalMismatch) instead of a generic handshake error.
//
// A client that sends no server name gets the certificate of the first name
// too: certmagic would pick the one for the address the client dialled,
// which in ACME mode may be none and in local mode names only that address.
func getCertificate(cfg *certmagic.Config, fallback string) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if hello.ServerName == "" {
			h := *hello
			h.ServerName = fallback
			hello = &h
		}
		c, err := cfg.GetCertificate(hello)
		if err == nil {
			return c, nil
		}
		if isACMEChallenge(hello) {
			return nil, err
		}
		h := *hello
		h.ServerName = fallback
		if c, ferr := cfg.GetCertificate(&h); ferr == nil {
			return c, nil
		}
		return nil, err
	}
}

// isACMEChallenge is the test certmagic applies to recognise a TLS-ALPN-01
// validation handshake (RFC 8737 section 3: SNI set, ALPN only acme-tls/1).
func isACMEChallenge(hello *tls.ClientHelloInfo) bool {
	return hello.ServerName != "" && len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmeTLS1Protocol
}
