package certs

import (
	"context"
	"crypto/x509"
	"sort"
	"sync/atomic"
	"time"
)

// ServedCert describes one certificate a Manager serves, for monitoring.
type ServedCert struct {
	// Name is the first name the certificate covers (its first DNS or IP
	// subjectAltName, else its common name).
	Name string
	// Mode is where it comes from: local, acme or files.
	Mode TLSMode
	// Issuer is the common name of its issuer (the local CA, the ACME CA's
	// intermediate, or whoever signed a files-mode certificate).
	Issuer   string
	NotAfter time.Time
}

// Certificates lists the certificates the Manager serves now: managed ones
// (local and ACME) from the certmagic cache, and each files-mode source's
// current one, sorted by name and issuer. A renewed certificate replaces the
// old one in the list. It reads no storage and suits a scrape; it waits for
// a Source call in progress (an ACME order) to end.
func (m *Manager) Certificates() []ServedCert {
	m.mu.Lock()
	files := append([]*fileSource(nil), m.files...)
	m.mu.Unlock()
	m.cfgMu.RLock()
	byName := make(map[string]TLSMode, len(m.byName))
	for n, cfg := range m.byName {
		mode := ModeLocal
		if m.acme != nil && cfg == m.acme.cfg {
			mode = ModeACME
		}
		byName[n] = mode
	}
	m.cfgMu.RUnlock()

	var out []ServedCert
	seen := map[string]bool{}
	for n, mode := range byName {
		for _, c := range m.cache.AllMatchingCertificates(n) {
			if seen[c.Hash()] || c.Leaf == nil {
				continue
			}
			seen[c.Hash()] = true
			out = append(out, servedCert(c.Leaf, mode))
		}
	}
	for _, fs := range files {
		if c := fs.cur.Load(); c != nil && c.Leaf != nil {
			out = append(out, servedCert(c.Leaf, ModeFiles))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Issuer < out[j].Issuer
	})
	return out
}

func servedCert(leaf *x509.Certificate, mode TLSMode) ServedCert {
	name := leaf.Subject.CommonName
	switch {
	case len(leaf.DNSNames) > 0:
		name = leaf.DNSNames[0]
	case len(leaf.IPAddresses) > 0:
		name = leaf.IPAddresses[0].String()
	}
	return ServedCert{Name: name, Mode: mode, Issuer: leaf.Issuer.CommonName, NotAfter: leaf.NotAfter}
}

// ACMEStats counts the outcomes of ACME orders since the Manager started,
// as certmagic reports them: the first certificate for a name (obtain) and
// its renewals, each success and each failed attempt (certmagic retries a
// failed order, and each attempt counts).
type ACMEStats struct {
	Obtained, ObtainFailed uint64
	Renewed, RenewFailed   uint64
}

// acmeCounters are ACMEStats while they are counted.
type acmeCounters struct {
	obtained, obtainFailed, renewed, renewFailed atomic.Uint64
}

// ACMEStats returns the ACME order counts.
func (m *Manager) ACMEStats() ACMEStats {
	c := &m.acmeCount
	return ACMEStats{
		Obtained: c.obtained.Load(), ObtainFailed: c.obtainFailed.Load(),
		Renewed: c.renewed.Load(), RenewFailed: c.renewFailed.Load(),
	}
}

// acmeEvent counts certmagic's cert_obtained and cert_failed events of the
// ACME configuration (certmagic.Config.OnEvent). It never returns an error:
// one would cancel the operation the event announces.
func (m *Manager) acmeEvent(_ context.Context, event string, data map[string]any) error {
	renewal, _ := data["renewal"].(bool)
	c := &m.acmeCount
	switch {
	case event == "cert_obtained" && renewal:
		c.renewed.Add(1)
	case event == "cert_obtained":
		c.obtained.Add(1)
	case event == "cert_failed" && renewal:
		c.renewFailed.Add(1)
	case event == "cert_failed":
		c.obtainFailed.Add(1)
	}
	return nil
}
