package certs

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/caddyserver/certmagic"
)

// DefaultManagedLocalLifetime is the lifetime of certificates the local CA
// issues for certmagic-managed listeners. Shorter than hand-issued
// certificates (90 days) because renewal is automatic: certmagic renews in
// the last third of the lifetime, so a stolen key is useful for a month at
// most.
const DefaultManagedLocalLifetime = 30 * 24 * time.Hour

// localIssuer makes the local CA a certmagic Issuer, so local and ACME
// certificates share one cache, one storage and one renewal loop.
type localIssuer struct {
	ca       *CA
	lifetime time.Duration
}

var _ certmagic.Issuer = (*localIssuer)(nil)

// Issue signs the CSR's public key for the CSR's names.
func (li *localIssuer) Issue(_ context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("local CA: bad certificate request signature: %w", err)
	}
	var names []string
	names = append(names, csr.DNSNames...)
	for _, ip := range csr.IPAddresses {
		names = append(names, ip.String())
	}
	names = append(names, csr.EmailAddresses...)
	for _, u := range csr.URIs {
		names = append(names, u.String())
	}
	is, err := li.ca.Issue(IssueRequest{Names: names, PublicKey: csr.PublicKey, Lifetime: li.lifetime})
	if err != nil {
		return nil, fmt.Errorf("local CA: %w", err)
	}
	return &certmagic.IssuedCertificate{
		Certificate: is.CertPEM(),
		Metadata:    map[string]string{"issuer": "passerelle local CA", "ca_file": li.ca.CertFile()},
	}, nil
}

// IssuerKey names this CA in certmagic's storage paths. It carries the CA's
// key identifier, so certificates of an older local CA (after the folder was
// deleted and a new CA made) are never served again: clients would not trust
// them.
func (li *localIssuer) IssuerKey() string {
	id := li.ca.Certificate().SubjectKeyId
	if len(id) > 8 {
		id = id[:8]
	}
	return "passerelle-local-" + hex.EncodeToString(id)
}
