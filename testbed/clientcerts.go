package testbed

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/secure"
)

// DefaultP12Password protects the PKCS#12 files of IssueClientCerts unless
// another is given. It is a test password, printed in the documentation.
const DefaultP12Password = "passerelle"

// ClientCertsConfig configures IssueClientCerts.
type ClientCertsConfig struct {
	// Dir is the testbed folder (Config.Dir): the root is loaded from it (or
	// created), and revoked serials are recorded in it.
	Dir string
	// Out is the folder the files are written to; created if missing.
	Out string
	// Password protects the PKCS#12 files (default DefaultP12Password).
	Password string
	// KeyType of the client keys (default ecdsa-p256).
	KeyType certs.KeyType
	// Now is the clock the certificates are dated from (default time.Now).
	Now func() time.Time
}

// ClientCert describes the files issued for one status.
type ClientCert struct {
	// Status is what the client-certificate endpoints judge this certificate.
	Status     secure.Status `json:"status"`
	CommonName string        `json:"common_name"`
	CertFile   string        `json:"cert_file"` // leaf then chain, PEM
	KeyFile    string        `json:"key_file"`  // PKCS#8 PEM, 0600
	// P12File uses modern algorithms (certs.P12Modern: PBKDF2-SHA-256 and
	// AES-256-CBC), read by OpenSSL 1.1.1+, Java 12+ and Windows Server
	// 2019+.
	P12File string `json:"p12_file"`
	// LegacyP12File uses 3DES with a SHA-1 MAC (certs.P12Legacy, as
	// `passerelle cert` writes), for older stores: AIR on older Windows and
	// macOS keychains, Java 8.
	LegacyP12File string `json:"legacy_p12_file"`
	Description   string `json:"description"`
}

// clientPlan is one client certificate to issue; issueClientCert bends a
// good client certificate according to the status.
type clientPlan struct {
	status      secure.Status
	commonName  string
	description string
	revoke      bool
}

// clientLifetime of the good client certificates. Issue again to refresh.
const clientLifetime = 2 * 365 * 24 * time.Hour

func clientPlans() []clientPlan {
	return []clientPlan{
		{status: secure.StatusTrusted, commonName: "trusted.clients.testbed.localhost",
			description: "a good client certificate from the testbed root, on the allow-list"},
		{status: secure.StatusExpired, commonName: "expired.clients.testbed.localhost",
			description: "notAfter 30 days in the past"},
		{status: secure.StatusNotYetValid, commonName: "not-yet-valid.clients.testbed.localhost",
			description: "notBefore 5 years in the future"},
		{status: secure.StatusPrincipalMismatch, commonName: "mallory.outsiders.testbed.localhost",
			description: "good, but its common name is outside the allow-list " + clientNamePattern},
		{status: secure.StatusUntrustedSigners, commonName: "untrusted.clients.testbed.localhost",
			description: "signed by a root the testbed does not trust"},
		{status: secure.StatusInvalidChain, commonName: "invalid-chain.clients.testbed.localhost",
			description: "signed by an intermediate (sent by the client) that is not a CA"},
		{status: secure.StatusRevoked, commonName: "revoked.clients.testbed.localhost", revoke: true,
			description: "revoked: its serial is on the testbed root's CRL"},
		{status: secure.StatusInvalid, commonName: "invalid.clients.testbed.localhost",
			description: "not meant for clients: extended key usage serverAuth only"},
	}
}

// IssueClientCerts writes, into cfg.Out, one client certificate per status
// the client-certificate endpoints can give (all but unknown, which is what
// sending no certificate gives), as STATUS.crt, STATUS.key, STATUS.p12 and
// STATUS-legacy.p12, plus ca.crt (the testbed root). Run it against the same
// folder as the testbed (its data folder), so both share the root and the
// list of revoked client serials.
func IssueClientCerts(cfg ClientCertsConfig) ([]ClientCert, error) {
	if cfg.Dir == "" {
		return nil, errors.New("testbed: client certificates: no testbed folder (ClientCertsConfig.Dir)")
	}
	if cfg.Out == "" {
		return nil, errors.New("testbed: client certificates: no output folder")
	}
	if err := checkKeyType(cfg.KeyType); err != nil {
		return nil, fmt.Errorf("testbed: client certificates: %w", err)
	}
	if cfg.Password == "" {
		cfg.Password = DefaultP12Password
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	now := cfg.Now()
	root, _, err := loadOrCreateRoot(cfg.Dir, cfg.KeyType, now)
	if err != nil {
		return nil, fmt.Errorf("testbed: client certificates: %w", err)
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("testbed: client certificates: %w", err)
	}
	if err := certs.WriteFileAtomic(filepath.Join(cfg.Out, "ca.crt"), certs.MarshalCertsPEM(root.cert), 0o644); err != nil {
		return nil, fmt.Errorf("testbed: client certificates: %w", err)
	}
	var out []ClientCert
	for _, p := range clientPlans() {
		cc, err := issueClientCert(cfg, root, now, p)
		if err != nil {
			return nil, fmt.Errorf("testbed: client certificate %s: %w", p.status, err)
		}
		out = append(out, cc)
	}
	return out, nil
}

func issueClientCert(cfg ClientCertsConfig, root *authority, now time.Time, p clientPlan) (ClientCert, error) {
	spec := certSpec{
		commonName:  p.commonName,
		notBefore:   now.Add(-skew),
		notAfter:    now.Add(clientLifetime),
		extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	signer := root
	var chain []*x509.Certificate
	caSpec := func(cn string, notCA bool) certSpec {
		return certSpec{commonName: cn, notBefore: now.Add(-skew), notAfter: now.Add(clientLifetime),
			isCA: !notCA, caShape: notCA}
	}
	switch p.status {
	case secure.StatusExpired:
		spec.notBefore, spec.notAfter = now.Add(-90*24*time.Hour), now.Add(-30*24*time.Hour)
	case secure.StatusNotYetValid:
		spec.notBefore, spec.notAfter = now.Add(5*365*24*time.Hour), now.Add(6*365*24*time.Hour)
	case secure.StatusUntrustedSigners:
		c, k, err := issue(cfg.KeyType, nil, caSpec("passerelle testbed untrusted client root", false))
		if err != nil {
			return ClientCert{}, err
		}
		signer = &authority{cert: c, key: k}
	case secure.StatusInvalidChain:
		c, k, err := issue(cfg.KeyType, root, caSpec("passerelle testbed client intermediate that is not a CA", true))
		if err != nil {
			return ClientCert{}, err
		}
		signer = &authority{cert: c, key: k}
		chain = []*x509.Certificate{c}
	case secure.StatusInvalid:
		spec.extKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	leaf, key, err := issue(cfg.KeyType, signer, spec)
	if err != nil {
		return ClientCert{}, err
	}
	if p.revoke {
		if err := addRevokedClient(cfg.Dir, leaf.SerialNumber, now); err != nil {
			return ClientCert{}, err
		}
	}
	stem := filepath.Join(cfg.Out, string(p.status))
	cc := ClientCert{
		Status: p.status, CommonName: p.commonName, Description: p.description,
		CertFile: stem + ".crt", KeyFile: stem + ".key", P12File: stem + ".p12", LegacyP12File: stem + "-legacy.p12",
	}
	kp, err := certs.MarshalKeyPEM(key)
	if err != nil {
		return ClientCert{}, err
	}
	if err := certs.WriteFileAtomic(cc.KeyFile, kp, 0o600); err != nil {
		return ClientCert{}, err
	}
	if err := certs.WriteFileAtomic(cc.CertFile, certs.MarshalCertsPEM(append([]*x509.Certificate{leaf}, chain...)...), 0o644); err != nil {
		return ClientCert{}, err
	}
	// The PKCS#12 files hold the private key: owner-only, like the key file.
	for _, f := range []struct {
		path   string
		format certs.P12Format
	}{{cc.P12File, certs.P12Modern}, {cc.LegacyP12File, certs.P12Legacy}} {
		p12, err := certs.EncodePKCS12(key, leaf, chain, cfg.Password, f.format)
		if err != nil {
			return ClientCert{}, err
		}
		if err := certs.WriteFileAtomic(f.path, p12, 0o600); err != nil {
			return ClientCert{}, err
		}
	}
	return cc, nil
}
