package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"time"
)

// Leaf lifetimes. Browsers and Apple platforms refuse TLS server
// certificates valid for more than 825 days (Apple's 2019 rule, also the
// CA/Browser Forum limit of the time), so that is the ceiling; 90 days is the
// default, as ACME CAs issue.
const (
	DefaultLeafLifetime = 90 * 24 * time.Hour
	MaxLeafLifetime     = 825 * 24 * time.Hour
)

// clockSkew backdates NotBefore so a client whose clock is a little behind
// still accepts a certificate issued a moment ago.
const clockSkew = time.Minute

// IssueRequest describes a certificate to issue.
type IssueRequest struct {
	// Names go into the subjectAltName: each is an IP address, an e-mail
	// address (has @), a URI (has ://) or else a DNS name (wildcards allowed
	// as "*.example.com"). See ClassifyName. A server certificate needs at
	// least one.
	Names []string
	// CommonName is the subject CN. Default: the first name. Modern clients
	// ignore it in favour of the names; old ones still show it.
	CommonName string
	// Client issues a client-authentication certificate (extended key usage
	// clientAuth) instead of a server one (serverAuth).
	Client bool
	// Route issues a certificate for a cluster node's routes, which both
	// accept and open connections: serverAuth and clientAuth. Names as for
	// a server certificate.
	Route bool
	// Lifetime of the certificate. Default DefaultLeafLifetime; more than
	// MaxLeafLifetime is refused. It is cut short so the leaf never outlives
	// the CA.
	Lifetime time.Duration
	// KeyType of the new key. Default KeyECDSAP256. Ignored with PublicKey.
	KeyType KeyType
	// PublicKey, when set, is certified instead of a new key (for a CSR);
	// Issued.Key is then nil.
	PublicKey crypto.PublicKey
}

// Issued is a certificate fresh from the CA, with its key when the CA made
// the key.
type Issued struct {
	Cert *x509.Certificate
	// Key is the private key, nil when the request gave a PublicKey.
	Key crypto.Signer
	// Chain holds the intermediates between Cert and the root, the ones a
	// server must send. The local CA is a root issuing leaves directly, so
	// Chain is empty for its certificates: a root is never sent (clients must
	// already have it; RFC 8446 section 4.4.2 lets servers omit it).
	Chain []*x509.Certificate
}

// CertPEM is the certificate followed by its chain, in PEM: what a server
// configures as its certificate file.
func (is *Issued) CertPEM() []byte {
	return MarshalCertsPEM(append([]*x509.Certificate{is.Cert}, is.Chain...)...)
}

// KeyPEM is the private key in PKCS#8 PEM. It fails when the request
// certified an outside public key, since there is no private key then.
func (is *Issued) KeyPEM() ([]byte, error) {
	if is.Key == nil {
		return nil, errors.New("no private key: the certificate was issued for a given public key")
	}
	return MarshalKeyPEM(is.Key)
}

// TLSCertificate is the certificate, chain and key ready for a tls.Config.
func (is *Issued) TLSCertificate() tls.Certificate {
	c := tls.Certificate{Certificate: [][]byte{is.Cert.Raw}, Leaf: is.Cert}
	if is.Key != nil {
		c.PrivateKey = is.Key
	}
	for _, ic := range is.Chain {
		c.Certificate = append(c.Certificate, ic.Raw)
	}
	return c
}

// Issue signs a new leaf certificate. Bad requests (an invalid name, no name
// for a server certificate, a lifetime out of range, an unknown key type)
// return an error naming the problem.
func (ca *CA) Issue(req IssueRequest) (*Issued, error) {
	names, err := parseNames(req.Names)
	if err != nil {
		return nil, err
	}
	if req.Client && req.Route {
		return nil, errors.New("a certificate is for a client or for a cluster route, not both")
	}
	if names.Len() == 0 && !req.Client {
		return nil, errors.New("a server certificate needs at least one name (DNS name or IP address)")
	}
	if names.Len() == 0 && req.CommonName == "" {
		return nil, errors.New("a client certificate needs a name or a common name")
	}
	lifetime := req.Lifetime
	switch {
	case lifetime == 0:
		lifetime = DefaultLeafLifetime
	case lifetime < 0:
		return nil, fmt.Errorf("certificate lifetime %s is negative", lifetime)
	case lifetime > MaxLeafLifetime:
		return nil, fmt.Errorf("certificate lifetime %s is over the %d-day maximum that clients accept", lifetime, int(MaxLeafLifetime/(24*time.Hour)))
	}

	var (
		key crypto.Signer
		pub = req.PublicKey
	)
	if pub == nil {
		key, err = GenerateKey(req.KeyType)
		if err != nil {
			return nil, err
		}
		pub = key.Public()
	}
	skid, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	serial, err := RandomSerial()
	if err != nil {
		return nil, err
	}

	now := time.Now()
	notBefore, notAfter := now.Add(-clockSkew), now.Add(lifetime)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("local CA %s expired on %s: make a new one", ca.certFile, ca.cert.NotAfter.Format(time.DateOnly))
	}

	cn := req.CommonName
	if cn == "" {
		cn = firstName(names)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization:       []string{"passerelle"},
			OrganizationalUnit: ca.cert.Subject.OrganizationalUnit,
			CommonName:         cn,
		},
		SubjectKeyId:          skid,
		AuthorityKeyId:        ca.cert.SubjectKeyId,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              leafKeyUsage(pub),
		BasicConstraintsValid: true,
		DNSNames:              names.DNS,
		IPAddresses:           names.IPs,
		EmailAddresses:        names.Emails,
		URIs:                  names.URIs,
	}
	switch {
	case req.Route:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	case req.Client:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	default:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	if len(names.Emails) > 0 {
		// S/MIME clients look for this usage on certificates naming a mailbox.
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageEmailProtection)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	return &Issued{Cert: cert, Key: key}, nil
}

// leafKeyUsage follows RFC 5280 section 4.2.1.3 and what TLS needs: every
// key signs (ECDHE handshakes); only RSA keys also encipher (RSA key
// exchange in TLS 1.2 and older, which AIR-era clients may still use).
func leafKeyUsage(pub crypto.PublicKey) x509.KeyUsage {
	switch pub.(type) {
	case *rsa.PublicKey:
		return x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	case *ecdsa.PublicKey, ed25519.PublicKey:
		return x509.KeyUsageDigitalSignature
	default:
		return x509.KeyUsageDigitalSignature
	}
}

func firstName(n Names) string {
	switch {
	case len(n.DNS) > 0:
		return n.DNS[0]
	case len(n.IPs) > 0:
		return n.IPs[0].String()
	case len(n.Emails) > 0:
		return n.Emails[0]
	case len(n.URIs) > 0:
		return n.URIs[0].String()
	}
	return ""
}
