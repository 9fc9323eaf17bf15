package certs

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
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
//
// certmagic manages one certificate per name; a local listener, though,
// gets one certificate naming all its names (groups), managed under its
// first name. A client that sends no server name (old socket clients send
// none) is then served a certificate valid for every name it may have
// dialled: localhost, 127.0.0.1 and ::1 by default.
type localIssuer struct {
	ca       *CA
	lifetime time.Duration

	mu sync.Mutex
	// groups maps the managed name of a listener to all its names, that
	// name first.
	groups map[string][]string
}

// setGroup records the names a certificate managed under names[0] carries,
// adding to those of another listener with the same first name.
func (li *localIssuer) setGroup(names []string) {
	li.mu.Lock()
	defer li.mu.Unlock()
	if li.groups == nil {
		li.groups = map[string][]string{}
	}
	g := li.groups[names[0]]
	if g == nil {
		g = []string{names[0]}
	}
	for _, n := range names[1:] {
		if !slices.Contains(g, n) {
			g = append(g, n)
		}
	}
	li.groups[names[0]] = g
}

// group is the names a certificate managed under name carries.
func (li *localIssuer) group(name string) []string {
	li.mu.Lock()
	defer li.mu.Unlock()
	if g, ok := li.groups[name]; ok {
		return slices.Clone(g)
	}
	return []string{name}
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
	req := IssueRequest{Names: names, PublicKey: csr.PublicKey, Lifetime: li.lifetime}
	if len(names) == 1 {
		// The subject certmagic manages: keep it first (as the CN), which
		// is the name certmagic renews the certificate under.
		req.Names, req.CommonName = li.group(names[0]), names[0]
	}
	is, err := li.ca.Issue(req)
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
