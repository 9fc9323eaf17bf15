package testbed

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/passerelle/passerelle/certs"
)

// checkKeyType reports a key type the testbed does not make; "" means
// ecdsa-p256. ECDSA P-256 is fast to generate, so a start takes
// milliseconds; RSA 2048 suits clients whose TLS stack predates ECDSA (old
// AIR runtimes on old systems).
func checkKeyType(kt certs.KeyType) error {
	switch kt {
	case certs.KeyECDSAP256, certs.KeyRSA2048, "":
		return nil
	}
	return fmt.Errorf("key type %q: want %s or %s", kt, certs.KeyECDSAP256, certs.KeyRSA2048)
}

// authority is a CA the testbed signs with. Only the root is persisted; every
// other authority is made afresh at each start.
type authority struct {
	name string // file stem in URLs: /ca/<name>.cer, /crl/<name>.crl
	cert *x509.Certificate
	key  crypto.Signer
}

// certSpec describes one certificate to issue. It is deliberately flat: each
// defect is one or two fields away from a good certificate.
type certSpec struct {
	commonName string
	dnsNames   []string
	ips        []net.IP
	emails     []string
	notBefore  time.Time
	notAfter   time.Time
	// isCA issues a CA certificate (basic constraints CA:TRUE, keyCertSign).
	isCA bool
	// caShape issues a certificate shaped like an intermediate (keyCertSign,
	// a CA-looking subject) but with CA:FALSE: the non-CA intermediate defect.
	caShape bool
	// maxPathLen, when maxPathLenSet, sets the path length constraint.
	maxPathLen    int
	maxPathLenSet bool
	permittedDNS  []string
	excludedDNS   []string
	extKeyUsage   []x509.ExtKeyUsage
	extra         []pkix.Extension
	aiaIssuer     []string
	ocspServer    []string
	crlDP         []string
	// key is the key to certify (a cross-sign of an existing authority);
	// a fresh one when nil.
	key crypto.Signer
	// subjectKeyID replaces the identifier crypto/x509 derives from the
	// key, for an issuer that must look like another one.
	subjectKeyID []byte
}

// issue makes a key and a certificate for spec signed by parent, or
// self-signed when parent is nil.
func issue(kt certs.KeyType, parent *authority, spec certSpec) (*x509.Certificate, crypto.Signer, error) {
	key := spec.key
	if key == nil {
		if err := checkKeyType(kt); err != nil {
			return nil, nil, fmt.Errorf("generate key for %q: %w", spec.commonName, err)
		}
		var err error
		if key, err = certs.GenerateKey(kt); err != nil {
			return nil, nil, fmt.Errorf("generate key for %q: %w", spec.commonName, err)
		}
	}
	serial, err := certs.RandomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: spec.commonName, Organization: []string{"passerelle testbed"}},
		NotBefore:             spec.notBefore,
		NotAfter:              spec.notAfter,
		BasicConstraintsValid: true,
		DNSNames:              spec.dnsNames,
		IPAddresses:           spec.ips,
		EmailAddresses:        spec.emails,
		ExtKeyUsage:           spec.extKeyUsage,
		ExtraExtensions:       spec.extra,
		IssuingCertificateURL: spec.aiaIssuer,
		OCSPServer:            spec.ocspServer,
		CRLDistributionPoints: spec.crlDP,
		PermittedDNSDomains:   spec.permittedDNS,
		ExcludedDNSDomains:    spec.excludedDNS,
		SubjectKeyId:          spec.subjectKeyID,
	}
	switch {
	case spec.isCA:
		tmpl.IsCA = true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
		if spec.maxPathLenSet {
			tmpl.MaxPathLen = spec.maxPathLen
			tmpl.MaxPathLenZero = spec.maxPathLen == 0
		} else {
			tmpl.MaxPathLen = -1
		}
	case spec.caShape:
		// keyCertSign without CA:TRUE: RFC 5280 §4.2.1.9 says the key must
		// then not verify certificate signatures, so every verifier rejects
		// the chain on the basic constraint, not on the key usage.
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	default:
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		if _, ok := key.(*rsa.PrivateKey); ok {
			// RSA key exchange in TLS 1.2 needs keyEncipherment (RFC 5246 §7.4.2).
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
		}
	}
	signerCert, signerKey := tmpl, key
	if parent != nil {
		signerCert, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signerKey)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate %q: %w", spec.commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse certificate %q: %w", spec.commonName, err)
	}
	return cert, key, nil
}

// tlsCertificate assembles what a TLS server sends: the leaf, then chain.
func tlsCertificate(leaf *x509.Certificate, key crypto.Signer, chain ...*x509.Certificate) tls.Certificate {
	c := tls.Certificate{PrivateKey: key, Leaf: leaf, Certificate: [][]byte{leaf.Raw}}
	for _, ic := range chain {
		c.Certificate = append(c.Certificate, ic.Raw)
	}
	return c
}

// Root CA persistence. The root lives in <data_dir>/testbed so that a client
// that needs the system trust store (AIR's SecureSocket) installs it once; the
// certificates under it are made afresh at every start, so none goes stale.
const (
	rootCertName = "ca.crt"
	rootKeyName  = "ca.key"
	// rootLifetime is long because installing a root is a chore; the root
	// is renewed when less than rootRenewBefore is left.
	rootLifetime    = 10 * 365 * 24 * time.Hour
	rootRenewBefore = 30 * 24 * time.Hour
)

// loadOrCreateRoot loads the testbed root from dir, or makes and saves a new
// one when there is none or it is about to expire. created reports a new root.
func loadOrCreateRoot(dir string, kt certs.KeyType, now time.Time) (root *authority, created bool, err error) {
	certFile, keyFile := filepath.Join(dir, rootCertName), filepath.Join(dir, rootKeyName)
	root, err = loadRoot(certFile, keyFile)
	switch {
	case err == nil && now.Add(rootRenewBefore).Before(root.cert.NotAfter):
		return root, false, nil
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return nil, false, err
	}
	cert, key, err := issue(kt, nil, certSpec{
		commonName: "passerelle testbed root (testing only)",
		notBefore:  now.Add(-time.Hour),
		notAfter:   now.Add(rootLifetime),
		isCA:       true,
	})
	if err != nil {
		return nil, false, fmt.Errorf("create testbed root: %w", err)
	}
	keyPEM, err := certs.MarshalKeyPEM(key)
	if err != nil {
		return nil, false, fmt.Errorf("encode testbed root key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create testbed folder: %w", err)
	}
	// Key first: a certificate without its key would be loaded and fail
	// later, while a key without certificate is simply replaced.
	if err := certs.WriteFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return nil, false, err
	}
	if err := certs.WriteFileAtomic(certFile, certs.MarshalCertsPEM(cert), 0o644); err != nil {
		return nil, false, err
	}
	return &authority{name: "root", cert: cert, key: key}, true, nil
}

func loadRoot(certFile, keyFile string) (*authority, error) {
	certData, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("read testbed root: %w", err)
	}
	keyData, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read testbed root key: %w", err)
	}
	pair, err := tls.X509KeyPair(certData, keyData)
	if err != nil {
		return nil, fmt.Errorf("load testbed root %s: %w", certFile, err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok || !pair.Leaf.IsCA {
		return nil, fmt.Errorf("load testbed root %s: not a CA certificate with a signing key", certFile)
	}
	return &authority{name: "root", cert: pair.Leaf, key: signer}, nil
}
