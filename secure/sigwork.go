package secure

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"slices"
	"time"
)

// The work of judging one chain is counted in units of one signature check
// with an ECDSA P-256 key, about 60 µs of one core (an RSA 2048 check costs
// less, an Ed25519 check about as much). A check with a larger key counts as
// what it costs: measured with Go 1.26, an RSA check of n bits costs about
// (n/2048)² units (RSA 4096: 3.7, RSA 8192: 14) and P-224, P-384 and
// P-521, which have no assembly code, 3, 8 and 22. Counting checks alone let
// a peer send 58 certificates with RSA 8192 keys and spend a fifth of a
// second of one core per handshake.
const (
	// maxSignatureWork is the work each of the two searches for a path may
	// cost: what 100 P-256 checks cost, 100 being the number of checks
	// crypto/x509 allows itself (maxChainSignatureChecks in
	// crypto/x509/verify.go). crypto/x509's search runs only when
	// searchWork foresees no more; passerelle's own ordering (buildPath) is
	// charged check by check to a sigBudget of as much.
	maxSignatureWork = 100
	// x509MaxChecks is crypto/x509's own limit on the checks one search
	// makes.
	x509MaxChecks = 100
	// maxSearchSteps bounds the walk searchWork makes through the names of
	// the certificates to foresee crypto/x509's search; past it, the search
	// is assumed to make x509MaxChecks checks with the heaviest key.
	maxSearchSteps = 4096
)

// errSignatureBudget reports a chain in which no path was found within the
// work of maxSignatureWork signature checks.
var errSignatureBudget = fmt.Errorf("no path to a trusted root found within the budget of %d signature checks (larger keys count as several) among the certificates the peer sent", maxSignatureWork)

// checkCost is the cost of checking a signature with the key pub, in units
// of a P-256 check (see maxSignatureWork).
func checkCost(pub any) int {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		n := k.N.BitLen()
		const unit = 2048 * 2048
		return max(1, (n*n+unit-1)/unit)
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P384():
			return 8
		case elliptic.P521():
			return 22
		case elliptic.P224():
			return 3
		}
	}
	return 1
}

// parentCost is what crypto/x509 spends checking a signature with parent's
// key while building chains: nothing when CheckSignatureFrom refuses parent
// before the check (not a CA, no certificate-signing usage, an unknown key).
func parentCost(parent *x509.Certificate) int {
	if parent.Version == 3 && !parent.BasicConstraintsValid || parent.BasicConstraintsValid && !parent.IsCA ||
		parent.KeyUsage != 0 && parent.KeyUsage&x509.KeyUsageCertSign == 0 ||
		parent.PublicKeyAlgorithm == x509.UnknownPublicKeyAlgorithm {
		return 0
	}
	return checkCost(parent.PublicKey)
}

// sigBudget counts the work spent judging one chain, in units of a P-256
// check, and refuses any check that would take it past max.
type sigBudget struct{ used, max int }

func newSigBudget() *sigBudget { return &sigBudget{max: maxSignatureWork} }

// charge spends units, or returns errSignatureBudget, spending nothing, when
// they are not left.
func (b *sigBudget) charge(units int) error {
	if b.used+units > b.max {
		return errSignatureBudget
	}
	b.used += units
	return nil
}

// signedBy checks only the signature on child with parent's key.
func (b *sigBudget) signedBy(child, parent *x509.Certificate) error {
	if err := b.charge(checkCost(parent.PublicKey)); err != nil {
		return err
	}
	return parent.CheckSignature(child.SignatureAlgorithm, child.RawTBSCertificate, child.Signature)
}

// anchored reports whether a trusted root issued c (or c is one), asking
// crypto/x509 with no intermediates; the question is charged as one unit,
// since crypto/x509 checks the signature of each root that could have issued
// c, and the roots are the operator's, not the peer's. The error is
// errSignatureBudget or nil.
func (b *sigBudget) anchored(c *x509.Certificate, roots *x509.CertPool, now time.Time) (bool, error) {
	if err := b.charge(1); err != nil {
		return false, err
	}
	_, err := anchorChain(c, roots, now, nil)
	return err == nil, nil
}

// selfSigned reports whether c names itself as issuer and its own key
// verifies its signature. The error is errSignatureBudget or nil.
func (b *sigBudget) selfSigned(c *x509.Certificate) (bool, error) {
	if !bytes.Equal(c.RawIssuer, c.RawSubject) {
		return false, nil
	}
	if err := b.charge(checkCost(c.PublicKey)); err != nil {
		return false, err
	}
	return c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil, nil
}

// searchWork bounds the work crypto/x509's chain building (buildChains in
// crypto/x509/verify.go) can spend verifying leaf with the intermediates
// inter, before it runs. crypto/x509 walks depth first from the leaf through
// every certificate whose subject names the current one's issuer, checking
// each such candidate's signature and going on from those that verify, up
// to x509MaxChecks checks. Whichever signatures verify, every check it makes
// is one of the walk that assumes they all do; so the x509MaxChecks
// costliest checks of that walk bound its work. The walk only compares
// names; when it grows past maxSearchSteps, the bound is x509MaxChecks checks
// with the heaviest key sent. The checks of the operator's roots, which
// crypto/x509 tries first at each step, are not counted: their keys are not
// the peer's choice.
func searchWork(leaf *x509.Certificate, inter []*x509.Certificate) int {
	byName := make(map[string][]*x509.Certificate)
	seen := make(map[string]bool)
	heaviest := 0
	for _, c := range inter {
		if c == nil || seen[string(c.Raw)] {
			continue // a CertPool holds a certificate once
		}
		seen[string(c.Raw)] = true
		byName[string(c.RawSubject)] = append(byName[string(c.RawSubject)], c)
		heaviest = max(heaviest, parentCost(c))
	}
	var costs []int
	steps := 0
	var walk func(chain []*x509.Certificate) bool
	walk = func(chain []*x509.Certificate) bool {
		for _, p := range byName[string(chain[len(chain)-1].RawIssuer)] {
			if steps++; steps > maxSearchSteps {
				return false
			}
			cost := parentCost(p)
			if cost == 0 || slices.Contains(chain, p) {
				continue // refused before any signature is checked
			}
			costs = append(costs, cost)
			if !walk(append(chain[:len(chain):len(chain)], p)) {
				return false
			}
		}
		return true
	}
	if !walk([]*x509.Certificate{leaf}) {
		return x509MaxChecks * heaviest
	}
	slices.SortFunc(costs, func(a, b int) int { return b - a })
	work := 0
	for _, c := range costs[:min(len(costs), x509MaxChecks)] {
		work += c
	}
	return work
}
