package testbed

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// KeyType names the key algorithm of every certificate the testbed makes.
type KeyType string

// The key types the testbed can make. ECDSA P-256 is fast to generate, so a
// start takes milliseconds; RSA 2048 suits clients whose TLS stack predates
// ECDSA (old AIR runtimes on old systems).
const (
	KeyECDSAP256 KeyType = "ecdsa-p256"
	KeyRSA2048   KeyType = "rsa-2048"
)

// Validate reports a key type the testbed cannot make; "" means ecdsa-p256.
func (kt KeyType) Validate() error {
	switch kt {
	case KeyECDSAP256, KeyRSA2048, "":
		return nil
	}
	return fmt.Errorf("key type %q: want %s or %s", kt, KeyECDSAP256, KeyRSA2048)
}

// generateKey returns a fresh private key of type kt.
func generateKey(kt KeyType) (crypto.Signer, error) {
	if err := kt.Validate(); err != nil {
		return nil, err
	}
	if kt == KeyRSA2048 {
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
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
func issue(kt KeyType, parent *authority, spec certSpec) (*x509.Certificate, crypto.Signer, error) {
	key := spec.key
	if key == nil {
		var err error
		if key, err = generateKey(kt); err != nil {
			return nil, nil, fmt.Errorf("generate key for %q: %w", spec.commonName, err)
		}
	}
	serial, err := randomSerial()
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

// randomSerial returns a positive 128-bit serial, as CA/B Forum rules ask
// (at least 64 bits of randomness).
func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("random serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
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
func loadOrCreateRoot(dir string, kt KeyType, now time.Time) (root *authority, created bool, err error) {
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
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, false, fmt.Errorf("encode testbed root key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create testbed folder: %w", err)
	}
	// Key first: a certificate without its key would be loaded and fail
	// later, while a key without certificate is simply replaced.
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, false, err
	}
	if err := writeFileAtomic(certFile, certPEM(cert), 0o644); err != nil {
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

// certPEM encodes certificates as PEM, one block each.
func certPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// keyPEM encodes a private key as PKCS#8 PEM.
func keyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// writeFileAtomic writes data to a temporary file beside path and renames it
// into place, so a reader never sees half a key.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
