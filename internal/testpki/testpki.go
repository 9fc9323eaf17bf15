package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority usable in tests.
type CA struct {
	Cert   *x509.Certificate
	Key    crypto.Signer
	Parent *CA // nil for a root
}

// CAOptions bends a CA certificate. The zero value is a sane CA valid from an
// hour ago for ten years.
type CAOptions struct {
	CommonName string
	NotBefore  time.Time
	NotAfter   time.Time
	// NotCA issues the "CA" without the CA basic constraint (a broken intermediate).
	NotCA bool
	// MaxPathLen, when MaxPathLenSet, sets the path length constraint.
	MaxPathLen    int
	MaxPathLenSet bool
	// PermittedDNSDomains sets a name constraint.
	PermittedDNSDomains []string
	// IssuingCertificateURL is the AIA caIssuers URL put in the certificate.
	IssuingCertificateURL []string
	OCSPServer            []string
	CRLDistributionPoints []string
}

// LeafOptions bends an end-entity certificate. The zero value is a server
// certificate for "localhost" and 127.0.0.1, valid from an hour ago for a day.
type LeafOptions struct {
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	Emails     []string
	// URIs are URI subject alternative names (SPIFFE IDs, for instance).
	URIs      []*url.URL
	NotBefore time.Time
	NotAfter  time.Time
	// Client makes a client-authentication certificate instead of a server one.
	Client bool
	// ExtKeyUsage, when not nil, replaces the usage chosen by Client.
	ExtKeyUsage []x509.ExtKeyUsage
	KeyUsage    x509.KeyUsage
	// ExtraExtensions are added verbatim (for unsupported critical extensions).
	ExtraExtensions       []pkix.Extension
	OCSPServer            []string
	CRLDistributionPoints []string
	IssuingCertificateURL []string
	Serial                *big.Int
}

// Leaf is an issued end-entity certificate with its key and chain.
type Leaf struct {
	Cert  *x509.Certificate
	Key   crypto.Signer
	Chain []*x509.Certificate // intermediates up to, not including, the root
}

// NewKey returns a fresh ECDSA P-256 key.
func NewKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("testpki: generate key: %v", err)
	}
	return k
}

// Serial returns a random 128-bit serial number.
func Serial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		tb.Fatalf("testpki: serial: %v", err)
	}
	return n.Add(n, big.NewInt(1))
}

// NewRoot makes a self-signed root CA.
func NewRoot(tb testing.TB, opts CAOptions) *CA {
	tb.Helper()
	if opts.CommonName == "" {
		opts.CommonName = "passerelle test root"
	}
	key := NewKey(tb)
	tmpl := caTemplate(tb, opts)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatalf("testpki: create root: %v", err)
	}
	return &CA{Cert: mustParse(tb, der), Key: key}
}

// Intermediate makes a CA signed by ca.
func (ca *CA) Intermediate(tb testing.TB, opts CAOptions) *CA {
	tb.Helper()
	if opts.CommonName == "" {
		opts.CommonName = "passerelle test intermediate"
	}
	key := NewKey(tb)
	tmpl := caTemplate(tb, opts)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		tb.Fatalf("testpki: create intermediate: %v", err)
	}
	return &CA{Cert: mustParse(tb, der), Key: key, Parent: ca}
}

func caTemplate(tb testing.TB, opts CAOptions) *x509.Certificate {
	nb, na := opts.NotBefore, opts.NotAfter
	if nb.IsZero() {
		nb = time.Now().Add(-time.Hour)
	}
	if na.IsZero() {
		na = time.Now().Add(10 * 365 * 24 * time.Hour)
	}
	t := &x509.Certificate{
		SerialNumber:          Serial(tb),
		Subject:               pkix.Name{CommonName: opts.CommonName, Organization: []string{"passerelle tests"}},
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  !opts.NotCA,
		PermittedDNSDomains:   opts.PermittedDNSDomains,
		IssuingCertificateURL: opts.IssuingCertificateURL,
		OCSPServer:            opts.OCSPServer,
		CRLDistributionPoints: opts.CRLDistributionPoints,
	}
	if opts.NotCA {
		t.KeyUsage = x509.KeyUsageDigitalSignature
	}
	if opts.MaxPathLenSet {
		t.MaxPathLen = opts.MaxPathLen
		t.MaxPathLenZero = opts.MaxPathLen == 0
	}
	return t
}

// Leaf issues an end-entity certificate signed by ca.
func (ca *CA) Leaf(tb testing.TB, opts LeafOptions) *Leaf {
	tb.Helper()
	key := NewKey(tb)
	nb, na := opts.NotBefore, opts.NotAfter
	if nb.IsZero() {
		nb = time.Now().Add(-time.Hour)
	}
	if na.IsZero() {
		na = time.Now().Add(24 * time.Hour)
	}
	if opts.DNSNames == nil && opts.IPs == nil && opts.Emails == nil && opts.URIs == nil && !opts.Client {
		opts.DNSNames = []string{"localhost"}
		opts.IPs = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	if opts.CommonName == "" {
		opts.CommonName = "passerelle test leaf"
		if len(opts.DNSNames) > 0 {
			opts.CommonName = opts.DNSNames[0]
		}
	}
	eku := opts.ExtKeyUsage
	if eku == nil {
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		if opts.Client {
			eku = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
	}
	ku := opts.KeyUsage
	if ku == 0 {
		ku = x509.KeyUsageDigitalSignature
	}
	serial := opts.Serial
	if serial == nil {
		serial = Serial(tb)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: opts.CommonName, Organization: []string{"passerelle tests"}},
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              ku,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		DNSNames:              opts.DNSNames,
		IPAddresses:           opts.IPs,
		EmailAddresses:        opts.Emails,
		URIs:                  opts.URIs,
		ExtraExtensions:       opts.ExtraExtensions,
		OCSPServer:            opts.OCSPServer,
		CRLDistributionPoints: opts.CRLDistributionPoints,
		IssuingCertificateURL: opts.IssuingCertificateURL,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		tb.Fatalf("testpki: create leaf: %v", err)
	}
	var chain []*x509.Certificate
	for c := ca; c != nil && c.Parent != nil; c = c.Parent {
		chain = append(chain, c.Cert)
	}
	return &Leaf{Cert: mustParse(tb, der), Key: key, Chain: chain}
}

// Pool returns a pool holding only this CA's certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// PEM returns the CA certificate in PEM form.
func (ca *CA) PEM() []byte { return CertPEM(ca.Cert) }

// WriteCert writes the CA certificate as PEM into dir and returns its path.
func (ca *CA) WriteCert(tb testing.TB, dir, name string) string {
	tb.Helper()
	return writeFile(tb, filepath.Join(dir, name), ca.PEM())
}

// TLS returns the leaf as a tls.Certificate carrying its intermediates.
func (l *Leaf) TLS() tls.Certificate {
	c := tls.Certificate{PrivateKey: l.Key, Leaf: l.Cert, Certificate: [][]byte{l.Cert.Raw}}
	for _, ic := range l.Chain {
		c.Certificate = append(c.Certificate, ic.Raw)
	}
	return c
}

// ChainPEM returns the leaf followed by its intermediates, in PEM.
func (l *Leaf) ChainPEM() []byte {
	out := CertPEM(l.Cert)
	for _, ic := range l.Chain {
		out = append(out, CertPEM(ic)...)
	}
	return out
}

// KeyPEM returns the leaf's private key in PKCS#8 PEM.
func (l *Leaf) KeyPEM(tb testing.TB) []byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(l.Key)
	if err != nil {
		tb.Fatalf("testpki: marshal key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// WriteFiles writes the chain and key as PEM into dir as NAME.crt and NAME.key
// and returns both paths.
func (l *Leaf) WriteFiles(tb testing.TB, dir, name string) (certFile, keyFile string) {
	tb.Helper()
	certFile = writeFile(tb, filepath.Join(dir, name+".crt"), l.ChainPEM())
	keyFile = writeFile(tb, filepath.Join(dir, name+".key"), l.KeyPEM(tb))
	return certFile, keyFile
}

// CertPEM encodes one certificate as PEM.
func CertPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func writeFile(tb testing.TB, path string, data []byte) string {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatalf("testpki: write %s: %v", path, err)
	}
	return path
}

// Create signs tmpl with signer, as parent, over pub, and parses the
// result: for the odd certificates that the CA helpers do not make.
func Create(tb testing.TB, tmpl, parent *x509.Certificate, pub any, signer crypto.Signer) *x509.Certificate {
	tb.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		tb.Fatalf("testpki: create %q: %v", tmpl.Subject.CommonName, err)
	}
	return mustParse(tb, der)
}

func mustParse(tb testing.TB, der []byte) *x509.Certificate {
	tb.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("testpki: parse: %v", err)
	}
	return c
}
