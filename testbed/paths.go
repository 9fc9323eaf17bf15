package testbed

import (
	"crypto/x509"
	"fmt"
	"time"
)

// The endpoints of this file send chains that hold a valid path, or break
// one by a name constraint, in the shapes that clients get wrong: a client
// must build the path from what the server sent, not take the certificates
// in the order they came (RFC 8446 section 4.4.2: "clients SHOULD be
// prepared to handle potentially extraneous certificates and arbitrary
// orderings"), and must apply each name constraint to its own name form only
// (RFC 5280 section 4.2.1.10).

// Names of the path-building and name-constraint shapes.
const (
	retiredRootName = "passerelle testbed retired root"
	namesakeName    = "passerelle testbed intermediate with a namesake"
)

// issuedLeaf is leafFrom under a fresh authority made for this endpoint
// (published with its CRL and OCSP responder, which OpenSSL's -crl_check
// needs for the leaf), sending chain after the leaf.
func (b *builder) issuedLeaf(a *authority, spec certSpec, chain ...*x509.Certificate) (material, error) {
	iss, err := b.addIssuer(a)
	if err != nil {
		return material{}, err
	}
	m, _, err := b.leafFrom(iss, spec, chain...)
	return m, err
}

// crossSignedExpired: the intermediate comes twice, sent first as a
// cross-sign by a retired root that expired 30 days ago (and that clients do
// not trust), then as signed by the testbed root. The shape of Let's
// Encrypt's chain after DST Root CA X3 expired in 2021: the path through the
// testbed root is valid, the other is not.
func (b *builder) crossSignedExpired() (material, error) {
	inter, err := b.newCA(b.root.authority, "passerelle testbed cross-signed intermediate", certSpec{})
	if err != nil {
		return material{}, err
	}
	retired, err := b.newCA(nil, retiredRootName, certSpec{})
	if err != nil {
		return material{}, err
	}
	cross, _, err := issue(b.kt, retired, certSpec{
		commonName:   inter.cert.Subject.CommonName,
		isCA:         true,
		key:          inter.key,
		subjectKeyID: inter.cert.SubjectKeyId,
		notBefore:    b.now.Add(-2 * leafLifetime),
		notAfter:     b.now.Add(-30 * 24 * time.Hour),
	})
	if err != nil {
		return material{}, fmt.Errorf("endpoint %s: %w", b.endpoint, err)
	}
	return b.issuedLeaf(inter, b.leafSpec(), cross, inter.cert)
}

// threeIntermediates makes root -> first -> second -> third, the third
// issuing the leaf, and sends them in order (indexes into the three).
func (b *builder) threeIntermediates(order ...int) (material, error) {
	var cas [3]*authority
	parent := b.root.authority
	for i := range cas {
		ca, err := b.newCA(parent, fmt.Sprintf("passerelle testbed intermediate %d of 3", i+1), certSpec{})
		if err != nil {
			return material{}, err
		}
		cas[i], parent = ca, ca
	}
	var sent []*x509.Certificate
	for _, i := range order {
		sent = append(sent, cas[i].cert)
	}
	return b.issuedLeaf(cas[2], b.leafSpec(), sent...)
}

// reversedChain sends the intermediates top first: the root's child, then
// its child, then the leaf's issuer.
func (b *builder) reversedChain() (material, error) { return b.threeIntermediates(0, 1, 2) }

// shuffledChain sends them in no order: the middle one, the leaf's issuer,
// the root's child.
func (b *builder) shuffledChain() (material, error) { return b.threeIntermediates(1, 2, 0) }

// extraCertificates sends the intermediate among certificates that have
// nothing to do with the path: a root no one trusts, an intermediate under
// it, a leaf of that intermediate, and a second intermediate of the testbed
// root.
func (b *builder) extraCertificates() (material, error) {
	stranger, err := b.newCA(nil, "passerelle testbed unrelated root", certSpec{})
	if err != nil {
		return material{}, err
	}
	strangerInter, err := b.newCA(stranger, "passerelle testbed unrelated intermediate", certSpec{})
	if err != nil {
		return material{}, err
	}
	strangerLeaf, _, err := issue(b.kt, strangerInter, b.leafSpec())
	if err != nil {
		return material{}, fmt.Errorf("endpoint %s: %w", b.endpoint, err)
	}
	sibling, err := b.newCA(b.root.authority, "passerelle testbed sibling intermediate", certSpec{})
	if err != nil {
		return material{}, err
	}
	m, _, err := b.leafFrom(b.intermediate, b.leafSpec(), stranger.cert, strangerLeaf, b.intermediate.cert, strangerInter.cert, sibling.cert)
	return m, err
}

// namesakeIssuer sends two intermediates under the testbed root with the
// same subject and the same key identifier but different keys; the first
// did not sign the leaf. Only the signature tells them apart, as after a CA
// changes its key and keeps its name and (wrongly) its key identifier.
func (b *builder) namesakeIssuer() (material, error) {
	ca, err := b.newCA(b.root.authority, namesakeName, certSpec{})
	if err != nil {
		return material{}, err
	}
	decoy, _, err := issue(b.kt, b.root.authority, certSpec{
		commonName:   namesakeName,
		isCA:         true,
		subjectKeyID: ca.cert.SubjectKeyId,
		notBefore:    b.now.Add(-skew),
		notAfter:     b.now.Add(2 * leafLifetime),
	})
	if err != nil {
		return material{}, fmt.Errorf("endpoint %s: %w", b.endpoint, err)
	}
	return b.issuedLeaf(ca, b.leafSpec(), decoy, ca.cert)
}

// nameConstraintsExcluded: the intermediate may issue for any DNS name but
// the leaf's own, which its name constraints exclude.
func (b *builder) nameConstraintsExcluded() (material, error) {
	spec := b.leafSpec()
	ca, err := b.newCA(b.root.authority, "passerelle testbed intermediate excluding the leaf's names",
		certSpec{isCA: true, excludedDNS: spec.dnsNames})
	if err != nil {
		return material{}, err
	}
	return b.issuedLeaf(ca, spec, ca.cert)
}

// nameConstraintsPermitted: the intermediate may issue only for the leaf's
// DNS names (and their subdomains), which is what the leaf names.
func (b *builder) nameConstraintsPermitted() (material, error) {
	spec := b.leafSpec()
	ca, err := b.newCA(b.root.authority, "passerelle testbed intermediate for the leaf's names only",
		certSpec{isCA: true, permittedDNS: spec.dnsNames})
	if err != nil {
		return material{}, err
	}
	return b.issuedLeaf(ca, spec, ca.cert)
}

// ipUnderDNSConstraint: the intermediate may issue only for DNS names under
// constrainedDomain; the leaf names IP addresses only (and its common name
// is the first of them). A DNS constraint says nothing of IP addresses
// (RFC 5280 section 4.2.1.10: a constraint applies to its own name form), so
// the leaf is good for its addresses.
func (b *builder) ipUnderDNSConstraint() (material, error) {
	ca, err := b.newCA(b.root.authority, "passerelle testbed intermediate for "+constrainedDomain+" DNS names only",
		certSpec{isCA: true, permittedDNS: []string{constrainedDomain}})
	if err != nil {
		return material{}, err
	}
	spec := b.leafSpec()
	spec.dnsNames = nil
	spec.commonName = spec.ips[0].String()
	return b.issuedLeaf(ca, spec, ca.cert)
}
