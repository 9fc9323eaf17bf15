package certs

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/passerelle/passerelle/internal/retry"
)

// File names of the local CA inside its folder (<data_dir>/ca).
const (
	CACertFileName = "ca.pem"
	caKeyFileName  = "ca-key.pem"
)

// CALifetime is how long a new local CA is valid. Ten years, as mkcert: the
// root is installed once into trust stores and should not need redoing.
const CALifetime = 10 * 365 * 24 * time.Hour

// ErrNoCA is returned (wrapped) by LoadCA when the folder holds no local CA
// yet. Commands test it with errors.Is to tell the user how to make one.
var ErrNoCA = errors.New("no local CA yet: run passerelle serve or passerelle ca create")

// CADir is the folder of the local CA inside a data folder.
func CADir(dataDir string) string { return filepath.Join(dataDir, "ca") }

// CA is the local certificate authority: a self-signed ECDSA P-256 root whose
// key stays on disk in the data folder (0600). It issues leaves directly;
// there is no intermediate, so what a client must trust is exactly
// CertFile(). A CA is safe for concurrent use.
type CA struct {
	cert     *x509.Certificate
	key      crypto.Signer
	certFile string
	keyFile  string
}

// Certificate is the CA's own certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertFile is the path of the CA certificate (PEM), the file users trust.
func (ca *CA) CertFile() string { return ca.certFile }

// KeyFile is the path of the CA private key (PEM, mode 0600).
func (ca *CA) KeyFile() string { return ca.keyFile }

// Pool is a certificate pool holding only this CA, for clients that should
// trust it.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// certPEM is the CA certificate in PEM.
func (ca *CA) certPEM() []byte {
	return MarshalCertsPEM(ca.cert)
}

// LoadCA loads the local CA from dir (normally CADir(dataDir)). When neither
// file exists the error wraps ErrNoCA. A corrupt file, a certificate that is
// not a CA, or a key that does not match the certificate is an error naming
// the file and the problem.
func LoadCA(dir string) (*CA, error) {
	certFile := filepath.Join(dir, CACertFileName)
	keyFile := filepath.Join(dir, caKeyFileName)
	certPEM, cerr := os.ReadFile(certFile)
	keyPEM, kerr := os.ReadFile(keyFile)
	switch {
	case errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist):
		return nil, fmt.Errorf("%w (looked in %s)", ErrNoCA, dir)
	case errors.Is(cerr, fs.ErrNotExist):
		return nil, &caKeyOnlyError{keyFile: keyFile, certFile: certFile}
	case errors.Is(kerr, fs.ErrNotExist):
		return nil, fmt.Errorf("local CA incomplete: %s exists but its key %s is missing", certFile, keyFile)
	case cerr != nil:
		return nil, fmt.Errorf("read local CA certificate: %w", cerr)
	case kerr != nil:
		return nil, fmt.Errorf("read local CA key: %w", kerr)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("local CA certificate %s: %w", certFile, err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("local CA certificate %s: not a CA certificate", certFile)
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("local CA key %s: %w", keyFile, err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("local CA key %s does not match certificate %s", keyFile, certFile)
	}
	return &CA{cert: cert, key: key, certFile: certFile, keyFile: keyFile}, nil
}

// LoadOrCreateCA loads the local CA from dir (normally CADir(dataDir)), or
// creates it there when there is none at all. created tells which happened,
// so callers can print how to trust a new CA. An incomplete or corrupt CA is
// an error, never silently replaced: clients may already trust it.
func LoadOrCreateCA(dir string) (ca *CA, created bool, err error) {
	ca, err = LoadCA(dir)
	if err == nil {
		return ca, false, nil
	}
	var keyOnly *caKeyOnlyError
	if errors.As(err, &keyOnly) && keyOnly.beingCreated() {
		return waitForCA(dir)
	}
	if !errors.Is(err, ErrNoCA) {
		return nil, false, err
	}
	ca, err = CreateCA(dir)
	if err == nil {
		return ca, true, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, false, err
	}
	// Another process is creating it at this very moment.
	return waitForCA(dir)
}

// waitForCA waits for another process to finish writing the CA: it writes
// the certificate right after the key.
func waitForCA(dir string) (*CA, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ca *CA
	err := retry.Do(ctx, retry.Backoff{Min: 20 * time.Millisecond, Max: 20 * time.Millisecond}, 0, nil, func() (err error) {
		ca, err = LoadCA(dir)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return ca, false, nil
}

// caKeyOnlyError is a CA folder holding a key but no certificate: either a
// creation in progress in another process, or a CA damaged by hand.
type caKeyOnlyError struct{ keyFile, certFile string }

func (e *caKeyOnlyError) Error() string {
	return fmt.Sprintf("local CA incomplete: %s exists but %s is missing", e.keyFile, e.certFile)
}

// beingCreated tells a creation in progress (a key written seconds ago)
// from a damaged CA.
func (e *caKeyOnlyError) beingCreated() bool {
	fi, err := os.Stat(e.keyFile)
	return err == nil && time.Since(fi.ModTime()) < 5*time.Second
}

// CreateCA makes a new local CA in dir (normally CADir(dataDir)), creating
// the folder (0700). It refuses to overwrite an existing CA. Its common name
// ends with the data folder's DataDirID.
func CreateCA(dir string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create local CA folder: %w", err)
	}
	certFile := filepath.Join(dir, CACertFileName)
	keyFile := filepath.Join(dir, caKeyFileName)
	for _, f := range []string{certFile, keyFile} {
		if _, err := os.Lstat(f); err == nil {
			return nil, &caExistsError{path: f}
		}
	}
	key, err := GenerateKey(KeyECDSAP256)
	if err != nil {
		return nil, err
	}
	serial, err := RandomSerial()
	if err != nil {
		return nil, err
	}
	skid, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization:       []string{"passerelle local CA"},
			OrganizationalUnit: []string{userAndHost()},
			// The data folder's id tells apart the CAs of several
			// folders, whose other fields are the same.
			CommonName: "passerelle local CA " + userAndHost() + " " + dataDirID(filepath.Dir(dir)),
		},
		SubjectKeyId:          skid,
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The root signs leaves only; forbidding intermediates limits what a
		// stolen key could build (RFC 5280 section 4.2.1.9).
		MaxPathLen:     0,
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create local CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("create local CA certificate: %w", err)
	}
	keyPEM, err := MarshalKeyPEM(key)
	if err != nil {
		return nil, err
	}
	// Key first: a certificate without its key is useless, and LoadCA reports
	// the half-written state clearly if we stop in between.
	// Both written exclusively: of two processes creating a CA at once,
	// exactly one wins and the other loads the winner's.
	if err := writeFileExclusive(keyFile, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("save local CA key: %w", err)
	}
	ca := &CA{cert: cert, key: key, certFile: certFile, keyFile: keyFile}
	if err := writeFileExclusive(certFile, ca.certPEM(), 0o644); err != nil {
		return nil, fmt.Errorf("save local CA certificate: %w", err)
	}
	return ca, nil
}

// caExistsError is CreateCA refusing to replace a CA; it matches
// fs.ErrExist.
type caExistsError struct{ path string }

func (e *caExistsError) Error() string        { return "local CA already exists: " + e.path }
func (e *caExistsError) Is(target error) bool { return target == fs.ErrExist }

// RandomSerial is a positive 128-bit random serial, as CA/Browser Forum
// baseline requirements ask for (at least 64 bits of entropy) and mkcert does.
func RandomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	if n.Sign() == 0 {
		n.SetInt64(1)
	}
	return n, nil
}

// subjectKeyID is the SHA-1 of the subjectPublicKey bits, method 1 of RFC
// 5280 section 4.2.1.2.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("decode public key: %w", err)
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:], nil
}

// userAndHost names who made the CA, so a trust-store entry says where it
// came from (mkcert does the same).
func userAndHost() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "@" + h
	}
	return name
}

// parseCertPEM parses the first CERTIFICATE block of PEM data.
func parseCertPEM(data []byte) (*x509.Certificate, error) {
	certs, err := ParseCertsPEM(data)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// MarshalCertsPEM encodes certificates as PEM, one "CERTIFICATE" block each,
// in the order given: a leaf then its chain is what a server's certificate
// file holds.
func MarshalCertsPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// ParseCertsPEM parses every CERTIFICATE block of PEM data, in order. No
// certificate at all is an error.
func ParseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}
