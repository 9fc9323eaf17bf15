package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
)

// DefaultACMECA is the ACME directory used when acme.ca is empty: Let's
// Encrypt's production endpoint.
const DefaultACMECA = certmagic.LetsEncryptProductionCA

// ACMEConfig is the acme section of the configuration.
type ACMEConfig struct {
	// CA is the ACME directory URL (acme.ca). Default DefaultACMECA.
	CA string
	// Email is the account contact (acme.email); optional but recommended:
	// the CA writes there before a certificate expires unrenewed.
	Email string
	// Agree must be true (acme.agree): it records that the operator accepted
	// the CA's terms of service. passerelle never asks on a terminal.
	Agree bool
	// CARoot is a PEM file of roots to trust for the ACME server's own HTTPS
	// (acme.ca_root), for private ACME servers; the system roots stay
	// trusted too.
	CARoot string
	// TLSALPNPort is the port the ACME server connects to for the
	// TLS-ALPN-01 challenge (acme.tls_alpn_port). Default 443. When a
	// passerelle listener owns that port it answers the challenge itself;
	// otherwise certmagic binds the port while the challenge lasts.
	TLSALPNPort int
	// HTTPPort enables the HTTP-01 challenge on that port (acme.http_port;
	// normally 80, or the port an external 80 is forwarded to). 0 disables
	// HTTP-01.
	HTTPPort int
	// ListenHost is the address challenge servers bind (acme.listen_host).
	// Default all addresses.
	ListenHost string
	// Profile selects a certificate profile the CA offers (acme.profile),
	// for example Let's Encrypt's "shortlived". Default: the CA's default.
	Profile string
}

func validateACMEConfig(c ACMEConfig) error {
	if c.CA != "" {
		u, err := url.Parse(c.CA)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("acme.ca %q is not an http(s) URL of an ACME directory", c.CA)
		}
	}
	for _, p := range []struct {
		key  string
		port int
	}{{"acme.tls_alpn_port", c.TLSALPNPort}, {"acme.http_port", c.HTTPPort}} {
		if p.port < 0 || p.port > 65535 {
			return fmt.Errorf("%s %d is not a port number", p.key, p.port)
		}
	}
	return nil
}

// acmeState is the ACME side of a Manager, made when the first ACME
// listener asks for it.
type acmeState struct {
	dir    string
	cfg    *certmagic.Config
	issuer *certmagic.ACMEIssuer
	client *http.Client // for the reachability probe, same trust as certmagic's
}

// nonInteractiveACMEIssuer keeps certmagic from ever prompting on the
// terminal: its PreCheck asks for an e-mail address on stdin when the
// operation is "interactive" (ManageSync) and none is configured. A service
// has nobody at the terminal; an empty e-mail just makes an account without
// contact.
type nonInteractiveACMEIssuer struct {
	*certmagic.ACMEIssuer
}

var (
	_ certmagic.Issuer            = nonInteractiveACMEIssuer{}
	_ certmagic.PreChecker        = nonInteractiveACMEIssuer{}
	_ certmagic.RenewalInfoGetter = nonInteractiveACMEIssuer{}
)

func (i nonInteractiveACMEIssuer) PreCheck(ctx context.Context, names []string, _ bool) error {
	return i.ACMEIssuer.PreCheck(ctx, names, false)
}

// acmeConfig returns the ACME state, creating it on first use. Callers hold
// m.mu.
func (m *Manager) acmeConfig() (*acmeState, error) {
	m.cfgMu.RLock()
	st := m.acme
	m.cfgMu.RUnlock()
	if st != nil {
		return st, nil
	}
	c := m.cfg.ACME
	dir := c.CA
	if dir == "" {
		dir = DefaultACMECA
	}
	if !c.Agree {
		return nil, fmt.Errorf("acme.agree is not true: read the terms of service of the ACME CA at %s, then set acme.agree: true", dir)
	}
	var roots *x509.CertPool
	if c.CARoot != "" {
		system, _ := x509.SystemCertPool() // nil if none: then only the file
		var err error
		if roots, err = AddCAFile(system, "acme.ca_root", c.CARoot); err != nil {
			return nil, err
		}
	}
	tlsPort := c.TLSALPNPort
	if tlsPort == 0 {
		tlsPort = certmagic.TLSALPNChallengePort
	}
	cfg := m.newCertmagicConfig(m.acmeEvent)
	iss := certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{
		CA:                   dir,
		Email:                c.Email,
		Agreed:               true,
		TrustedRoots:         roots,
		DisableHTTPChallenge: c.HTTPPort == 0,
		AltHTTPPort:          c.HTTPPort,
		AltTLSALPNPort:       tlsPort,
		ListenHost:           c.ListenHost,
		Profile:              c.Profile,
		Logger:               m.zap,
	})
	cfg.Issuers = []certmagic.Issuer{nonInteractiveACMEIssuer{iss}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if roots != nil {
		tr.TLSClientConfig.RootCAs = roots
	}
	st = &acmeState{dir: dir, cfg: cfg, issuer: iss, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	m.cfgMu.Lock()
	m.acme = st
	m.cfgMu.Unlock()
	return st, nil
}

// probe fetches the ACME directory, to tell "the CA is down" apart from "the
// CA refused".
func (st *acmeState) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, st.dir, nil)
	if err != nil {
		return err
	}
	resp, err := st.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("directory answered %s", resp.Status)
	}
	return nil
}

// acmeSource obtains (or loads from storage) the certificates of names
// from the ACME CA. When the CA cannot be reached but storage holds a
// certificate still valid for every name, that certificate is served and
// the log says so; renewal is retried in the background.
func (m *Manager) acmeSource(ctx context.Context, names []string) (*Source, error) {
	names, err := serverNames(ModeACME, names)
	if err != nil {
		return nil, err
	}
	st, err := m.acmeConfig()
	if err != nil {
		return nil, err
	}
	if err := m.claimNames(st.cfg, ModeACME, names); err != nil {
		return nil, err
	}
	issuerKey := st.issuer.IssuerKey()
	stored := map[string]bool{}
	for _, n := range names {
		stored[n] = m.storage.Exists(ctx, certmagic.StorageKeys.SiteCert(issuerKey, n))
	}

	// One name at a time: ManageSync stops at the first failure, and a
	// failure for one name must not keep the stored certificates of the
	// others from loading.
	errs := map[string]error{}
	for _, n := range names {
		if err := st.cfg.ManageSync(ctx, []string{n}); err != nil {
			errs[n] = err
		}
	}
	var reachErr error
	if len(errs) > 0 || anyTrue(stored) {
		reachErr = st.probe(ctx)
	}
	var missing []string
	var firstErr error
	for _, n := range names {
		if errs[n] != nil && !m.hasValidCert(n) {
			missing = append(missing, n)
			if firstErr == nil {
				firstErr = errs[n]
			}
		}
	}
	if len(missing) > 0 {
		return nil, acmeFailure(st.dir, missing, m.cfg.ACME, reachErr, firstErr)
	}
	for _, n := range names {
		switch {
		case !stored[n]:
			m.logReady(n, "acme", "obtained")
			continue
		case reachErr != nil:
			m.log.Warn("ACME CA unreachable: serving the stored certificate; renewal will be retried in the background",
				"server_name", n, "acme_ca", st.dir, "error", reachErr.Error())
		case errs[n] != nil:
			m.log.Warn("ACME CA did not renew the stored certificate: serving it while renewal is retried in the background",
				"server_name", n, "acme_ca", st.dir, "error", errs[n].Error())
		}
		m.logReady(n, "acme", "storage")
	}
	return &Source{
		GetCertificate: getCertificate(st.cfg, names[0]),
		NextProtos:     []string{acmeTLS1Protocol},
		Mode:           ModeACME,
		Names:          names,
	}, nil
}

// hasValidCert reports whether the cache holds a certificate for name that
// has not expired.
func (m *Manager) hasValidCert(name string) bool {
	for _, c := range m.cache.AllMatchingCertificates(name) {
		if c.Leaf != nil && time.Now().Before(c.Leaf.NotAfter) {
			return true
		}
	}
	return false
}

func anyTrue(m map[string]bool) bool {
	for _, v := range m {
		if v {
			return true
		}
	}
	return false
}

// ACMEError says why no ACME certificate could be had, and what to check.
type ACMEError struct {
	CA          string
	Names       []string
	Unreachable bool // the directory could not be fetched
	Hint        string
	Err         error
}

func (e *ACMEError) Error() string {
	what := "refused to issue"
	if e.Unreachable {
		what = "cannot be reached"
	}
	return fmt.Sprintf("no certificate for %s: the ACME CA %s %s (%v); %s",
		strings.Join(e.Names, ", "), e.CA, what, e.Err, e.Hint)
}

func (e *ACMEError) Unwrap() error { return e.Err }

func acmeFailure(dir string, names []string, c ACMEConfig, reachErr, manageErr error) error {
	if reachErr != nil {
		hint := "check acme.ca and the network"
		var uerr x509.UnknownAuthorityError
		if errors.As(reachErr, &uerr) || strings.Contains(reachErr.Error(), "certificate signed by unknown authority") {
			hint = "its HTTPS certificate is not trusted: set acme.ca_root to the PEM file of its root"
		}
		return &ACMEError{CA: dir, Names: names, Unreachable: true, Hint: hint, Err: reachErr}
	}
	port := c.TLSALPNPort
	if port == 0 {
		port = certmagic.TLSALPNChallengePort
	}
	hint := fmt.Sprintf("check that each name resolves to this host and that port %d (TLS-ALPN-01) reaches passerelle", port)
	if c.HTTPPort != 0 {
		hint += fmt.Sprintf(", or port %d (HTTP-01)", c.HTTPPort)
	}
	return &ACMEError{CA: dir, Names: names, Hint: hint, Err: manageErr}
}
