package testbed

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"net"
	"time"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/certs/revocation"
)

// Names used by the defects.
const (
	// mismatchName is the only name in the principal-mismatch certificate;
	// .invalid is reserved never to resolve (RFC 6761 section 6.4).
	mismatchName = "elsewhere.testbed.invalid"
	// constrainedDomain is the only DNS subtree the name-constrained
	// intermediate may issue for (RFC 5280 section 4.2.1.10).
	constrainedDomain = "example.com"
	// leafLifetime is how long a good leaf lives; leaves are made afresh at
	// every start, so only a testbed running this long sees one go stale.
	leafLifetime = 90 * 24 * time.Hour
	// skew is the back-dating of notBefore, for clients whose clock lags.
	skew = time.Hour
)

// unknownCriticalOID is an extension OID under passerelle's own private arc
// that no verifier knows; marked critical, it must make the certificate be
// rejected (RFC 5280 section 4.2).
var unknownCriticalOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 7, 1}

// material is what an endpoint serves.
type material struct {
	cert tls.Certificate // leaf, then chain as sent; OCSPStaple set if stapled
}

// builder issues the certificates of every endpoint. It holds the authorities
// of one testbed start and the base URL of its HTTP server.
type builder struct {
	kt      certs.KeyType
	now     time.Time
	baseURL string // http://host:port of the testbed's HTTP server
	// names returns the DNS names and IPs an endpoint's leaf covers.
	names func(endpoint string) ([]string, []net.IP)

	root         *issuer   // persisted, trusted by clients
	intermediate *issuer   // under root, served at its AIA URL
	extra        []*issuer // more issuers published on the HTTP server
	clock        func() time.Time
	// endpoint is set by the caller before each build.
	endpoint string
}

// issuer is an authority with its revocation machinery.
type issuer struct {
	*authority
	list      *revocation.List
	responder *revocation.Responder
	crl       *revocation.CRLPublisher
}

// urls are the AIA and CDP URLs that a leaf issued by iss carries.
func (b *builder) urls(iss *issuer, spec *certSpec) {
	spec.ocspServer = []string{b.baseURL + "/ocsp/" + iss.name}
	spec.crlDP = []string{b.baseURL + "/crl/" + iss.name + ".crl"}
}

// leafSpec is a good server leaf for the current endpoint.
func (b *builder) leafSpec() certSpec {
	dns, ips := b.names(b.endpoint)
	return certSpec{
		commonName:  dns[0],
		dnsNames:    dns,
		ips:         ips,
		notBefore:   b.now.Add(-skew),
		notAfter:    b.now.Add(leafLifetime),
		extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

// leafFrom issues spec under iss (with its revocation URLs) and returns the
// material with chain sent after the leaf.
func (b *builder) leafFrom(iss *issuer, spec certSpec, chain ...*x509.Certificate) (material, *x509.Certificate, error) {
	if iss != nil {
		b.urls(iss, &spec)
	}
	var parent *authority
	if iss != nil {
		parent = iss.authority
	}
	cert, key, err := issue(b.kt, parent, spec)
	if err != nil {
		return material{}, nil, fmt.Errorf("endpoint %s: %w", b.endpoint, err)
	}
	return material{cert: tlsCertificate(cert, key, chain...)}, cert, nil
}

func (b *builder) trusted() (material, error) {
	m, _, err := b.leafFrom(b.root, b.leafSpec())
	return m, err
}

func (b *builder) expired() (material, error) {
	s := b.leafSpec()
	s.notBefore, s.notAfter = b.now.Add(-90*24*time.Hour), b.now.Add(-30*24*time.Hour)
	m, _, err := b.leafFrom(b.root, s)
	return m, err
}

func (b *builder) notYetValid() (material, error) {
	s := b.leafSpec()
	s.notBefore, s.notAfter = b.now.Add(30*24*time.Hour), b.now.Add(90*24*time.Hour)
	m, _, err := b.leafFrom(b.root, s)
	return m, err
}

func (b *builder) principalMismatch() (material, error) {
	s := b.leafSpec()
	s.commonName, s.dnsNames, s.ips = mismatchName, []string{mismatchName}, nil
	m, _, err := b.leafFrom(b.root, s)
	return m, err
}

func (b *builder) selfSigned() (material, error) {
	m, _, err := b.leafFrom(nil, b.leafSpec())
	return m, err
}

func (b *builder) untrustedRoot() (material, error) {
	other, err := b.newCA(nil, "passerelle testbed untrusted root", certSpec{})
	if err != nil {
		return material{}, err
	}
	cert, key, err := issue(b.kt, other, b.leafSpec())
	if err != nil {
		return material{}, fmt.Errorf("endpoint %s: %w", b.endpoint, err)
	}
	return material{cert: tlsCertificate(cert, key)}, nil
}

func (b *builder) incompleteChain() (material, error) {
	s := b.leafSpec()
	// RFC 5280 section 4.2.2.1: caIssuers points at the DER certificate of
	// the issuer, which is what browsers fetch to complete such a chain.
	s.aiaIssuer = []string{b.baseURL + "/ca/" + b.intermediate.name + ".cer"}
	m, _, err := b.leafFrom(b.intermediate, s) // intermediate deliberately not sent
	return m, err
}

func (b *builder) nonCAIntermediate() (material, error) {
	notCA, err := b.newCA(b.root.authority, "passerelle testbed intermediate that is not a CA", certSpec{caShape: true})
	if err != nil {
		return material{}, err
	}
	cert, key, err := issue(b.kt, notCA, b.leafSpec())
	if err != nil {
		return material{}, fmt.Errorf("endpoint %s: %w", b.endpoint, err)
	}
	return material{cert: tlsCertificate(cert, key, notCA.cert)}, nil
}

func (b *builder) pathLength() (material, error) {
	zero, err := b.newCA(b.root.authority, "passerelle testbed intermediate with path length 0",
		certSpec{isCA: true, maxPathLenSet: true, maxPathLen: 0})
	if err != nil {
		return material{}, err
	}
	below, err := b.newCA(zero, "passerelle testbed intermediate beyond the path length", certSpec{isCA: true})
	if err != nil {
		return material{}, err
	}
	cert, key, err := issue(b.kt, below, b.leafSpec())
	if err != nil {
		return material{}, fmt.Errorf("endpoint %s: %w", b.endpoint, err)
	}
	return material{cert: tlsCertificate(cert, key, below.cert, zero.cert)}, nil
}

func (b *builder) nameConstraints() (material, error) {
	ca, err := b.newCA(b.root.authority, "passerelle testbed intermediate for "+constrainedDomain+" only",
		certSpec{isCA: true, permittedDNS: []string{constrainedDomain}})
	if err != nil {
		return material{}, err
	}
	// The leaf names a CRL of its own issuer: OpenSSL checks revocation
	// before name constraints, and a leaf without a reachable CRL would make
	// a revocation-checking client stop at "unable to get certificate CRL".
	constrained, err := b.addIssuer(ca)
	if err != nil {
		return material{}, err
	}
	m, _, err := b.leafFrom(constrained, b.leafSpec(), constrained.cert)
	return m, err
}

// addIssuer gives a throw-away authority its revocation machinery and
// publishes it on the HTTP server under its name.
func (b *builder) addIssuer(a *authority) (*issuer, error) {
	iss, err := newIssuer(a, b.clock)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", b.endpoint, err)
	}
	b.extra = append(b.extra, iss)
	return iss, nil
}

func (b *builder) badSignature() (material, error) {
	m, leaf, err := b.leafFrom(b.intermediate, b.leafSpec(), b.intermediate.cert)
	if err != nil {
		return material{}, err
	}
	// The signature value ends the DER certificate (RFC 5280 section 4.1:
	// tbsCertificate, signatureAlgorithm, signatureValue). Flipping a bit
	// of its last byte keeps the encoding valid (the last byte of an ECDSA
	// or RSA signature is value, not structure) and the signature wrong.
	der := append([]byte(nil), leaf.Raw...)
	der[len(der)-1] ^= 0x01
	bad, err := x509.ParseCertificate(der)
	if err != nil {
		return material{}, fmt.Errorf("endpoint %s: %w", b.endpoint, err)
	}
	m.cert.Certificate[0], m.cert.Leaf = der, bad
	return m, nil
}

// revoked issues a leaf under root and revokes it at once (keyCompromise,
// the reason clients least forgive).
func (b *builder) revoked() (material, *x509.Certificate, error) {
	m, leaf, err := b.leafFrom(b.root, b.leafSpec())
	if err != nil {
		return material{}, nil, err
	}
	if err := b.root.list.Revoke(leaf.SerialNumber, b.now.Add(-time.Minute), revocation.ReasonKeyCompromise); err != nil {
		return material{}, nil, fmt.Errorf("endpoint %s: %w", b.endpoint, err)
	}
	return m, leaf, nil
}

func (b *builder) revokedStapled() (material, error) {
	m, leaf, err := b.revoked()
	if err != nil {
		return material{}, err
	}
	// The staple is signed now and is valid for the responder's validity;
	// the server refreshes it (see stapler in serve.go).
	staple, err := b.root.responder.Response(leaf.SerialNumber)
	if err != nil {
		return material{}, fmt.Errorf("endpoint %s: staple: %w", b.endpoint, err)
	}
	m.cert.OCSPStaple = staple
	return m, nil
}

func (b *builder) revokedUnstapled() (material, error) {
	m, _, err := b.revoked()
	return m, err
}

func (b *builder) clientAuthOnly() (material, error) {
	s := b.leafSpec()
	s.extKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	m, _, err := b.leafFrom(b.root, s)
	return m, err
}

func (b *builder) unknownCritical() (material, error) {
	s := b.leafSpec()
	s.extra = []pkix.Extension{{Id: unknownCriticalOID, Critical: true, Value: []byte{0x05, 0x00}}} // ASN.1 NULL
	m, _, err := b.leafFrom(b.root, s)
	return m, err
}

// newCA makes a throw-away authority under parent (self-signed when nil).
// spec supplies the CA shape (isCA or caShape, constraints); names and dates
// are filled here.
func (b *builder) newCA(parent *authority, cn string, spec certSpec) (*authority, error) {
	if !spec.caShape {
		spec.isCA = true
	}
	spec.commonName = cn
	spec.notBefore = b.now.Add(-skew)
	spec.notAfter = b.now.Add(2 * leafLifetime)
	cert, key, err := issue(b.kt, parent, spec)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", b.endpoint, err)
	}
	return &authority{name: b.endpoint, cert: cert, key: key}, nil
}

// newIssuer wraps an authority with a revocation list, an OCSP responder and
// a CRL publisher, all answering from that list.
func newIssuer(a *authority, now func() time.Time) (*issuer, error) {
	list := revocation.NewList()
	resp, err := revocation.NewResponder(revocation.ResponderConfig{Issuer: a.cert, Signer: a.key, List: list, Now: now})
	if err != nil {
		return nil, fmt.Errorf("issuer %s: %w", a.name, err)
	}
	crl, err := revocation.NewCRLPublisher(revocation.CRLConfig{Issuer: a.cert, Signer: a.key, List: list, Now: now})
	if err != nil {
		return nil, fmt.Errorf("issuer %s: %w", a.name, err)
	}
	return &issuer{authority: a, list: list, responder: resp, crl: crl}, nil
}
