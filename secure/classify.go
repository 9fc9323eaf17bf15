package secure

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Bounds on the work a presented chain may cost. crypto/tls accepts a
// Certificate message of up to 256 KiB, some 800 small certificates, and a
// peer chooses every byte of it before anything about it is trusted. What is
// bounded is the work, not the shape: a server may send a valid path buried
// among cross-signed intermediates, several candidate issuers and
// certificates that have nothing to do with it, as real servers do, and it
// is found.
const (
	// maxCertificates is how many certificates a peer may send, its own
	// included. Real chains carry two to four; servers that bundle every
	// cross-sign they ever had send a few dozen.
	maxCertificates = 64
	// maxChainBytes bounds their total DER size: 64 certificates of 2 KiB
	// each (RSA 4096 keys and signatures). It bounds the parsing and
	// hashing; the signature checks are bounded by their cost
	// (maxSignatureWork).
	maxChainBytes = 128 << 10
)

// Classify judges a certificate chain as presented by a peer (leaf first) and
// returns the verdict in AIR's vocabulary. It follows the rule table in the
// package documentation: the first rule that applies gives the status. It never
// fails: every problem is a status with a reason. ctx bounds the network
// fetches (AIA issuers, OCSP, CRL).
func Classify(ctx context.Context, certs []*x509.Certificate, opts VerifyOptions) Verdict {
	return classify(ctx, certs, opts, newSigBudget())
}

// classify is Classify with the signature budget given, so that tests can
// count the work spent.
func classify(ctx context.Context, certs []*x509.Certificate, opts VerifyOptions, sigs *sigBudget) Verdict {
	v := Verdict{Status: StatusUnknown, Name: opts.Name, Certificates: certs}
	if len(certs) == 0 || certs[0] == nil {
		return v.with(StatusInvalid, "no certificate presented")
	}
	// Refused before any signature is checked: each certificate could be
	// the issuer of each other one.
	if reason := tooMuch(certs); reason != "" {
		opts.logger().Debug("chain refused: too large", "subject", name(certs[0]), "certificates", len(certs))
		return v.with(StatusInvalidChain, reason)
	}
	now := opts.now()
	leaf := certs[0]

	// The common case first: a complete, good chain that crypto/x509
	// verifies for the role in one pass. Only when it does not is the
	// chain taken apart to name what is wrong.
	// Its search runs only when it cannot cost more than the budget;
	// otherwise passerelle's own ordering, charged check by check, looks
	// for the path.
	if searchWork(leaf, certs[1:]) <= maxSignatureWork {
		if chain, ok := quickPath(leaf, certs[1:], now, opts); ok {
			v.Chain = chain
			if reason := chainDefect(chain, nil, now); reason != "" {
				return v.with(StatusInvalidChain, reason)
			}
			return v.judgeLeaf(ctx, leaf, nil, now, opts)
		}
	}

	path, linkErrs, err := buildPath(certs, opts.Roots, now, sigs)
	if err != nil {
		v.Chain = path
		return v.with(StatusInvalidChain, err.Error())
	}
	top := path[len(path)-1]

	// Rule 2: the path must reach a trusted root (untrustedSigners), unless
	// the only thing missing is an intermediate the AIA caIssuers URL leads to
	// (rule 3a, invalidChain: the peer failed to send it, RFC 5246 section
	// 7.4.2).
	anchor, err := anchorChain(top, opts.Roots, now, nil)
	if err != nil {
		if !opts.NoAIAFetch && len(top.IssuingCertificateURL) > 0 {
			fetched, url, ferr := fetchIssuers(ctx, top, opts, sigs)
			if ferr == nil {
				v.Chain = append(append(append([]*x509.Certificate(nil), path...), fetched...), anchorTail(fetched, opts.Roots, now)...)
				return v.with(StatusInvalidChain, fmt.Sprintf("the peer did not send the intermediate %s (found at %s)", name(fetched[0]), url))
			}
			opts.logger().Debug("aia fetch failed", "subject", name(top), "error", ferr)
		}
		v.Chain = path
		if self, _ := sigs.selfSigned(top); self {
			if top == leaf {
				return v.with(StatusUntrustedSigners, fmt.Sprintf("self-signed certificate %s is not trusted", name(top)))
			}
			return v.with(StatusUntrustedSigners, fmt.Sprintf("root %s is not trusted", name(top)))
		}
		return v.with(StatusUntrustedSigners, fmt.Sprintf("issuer %s of %s is not a trusted root and was not sent", dn(top.Issuer.String()), name(top)))
	}
	v.Chain = append(append([]*x509.Certificate(nil), path...), anchor[1:]...)

	// Rule 3: the chain must hold together in itself (invalidChain).
	if reason := chainDefect(v.Chain, linkErrs, now); reason != "" {
		return v.with(StatusInvalidChain, reason)
	}
	// What remains (name constraints, usage nesting, anything else
	// crypto/x509 rejects) is asked of crypto/x509 over the exact path, for
	// the role's usage first: in the common, good case that is the only
	// full verification.
	// Like the first search, it must not cost more than the budget.
	if searchWork(leaf, v.Chain[1:]) > maxSignatureWork {
		return v.with(StatusInvalidChain, errSignatureBudget.Error())
	}
	roleErr := verifyPath(leaf, v.Chain, now, opts.Roots, []x509.ExtKeyUsage{opts.Role.extKeyUsage()})
	if roleErr != nil {
		if err := verifyPath(leaf, v.Chain, now, opts.Roots, []x509.ExtKeyUsage{x509.ExtKeyUsageAny}); err != nil {
			return v.with(StatusInvalidChain, cleanErr(err))
		}
	}

	return v.judgeLeaf(ctx, leaf, roleErr, now, opts)
}

// judgeLeaf applies rules 4 to 10 once the chain is known to be sound;
// roleErr is crypto/x509's answer for the role's usage over the path.
func (v Verdict) judgeLeaf(ctx context.Context, leaf *x509.Certificate, roleErr error, now time.Time, opts VerifyOptions) Verdict {
	// Rule 4: the leaf must be fit for its role (invalid); then rule 3h.
	if reason := leafDefect(leaf, opts.Role); reason != "" {
		return v.with(StatusInvalid, reason)
	}
	if roleErr != nil {
		return v.with(StatusInvalidChain, fmt.Sprintf("an issuer does not allow %s authentication: %s", opts.Role, cleanErr(roleErr)))
	}

	// Rules 5 and 6: the leaf's validity window (RFC 5280 section 4.1.2.5).
	if now.After(leaf.NotAfter) {
		return v.with(StatusExpired, fmt.Sprintf("certificate expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
	if now.Before(leaf.NotBefore) {
		return v.with(StatusNotYetValid, fmt.Sprintf("certificate is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339)))
	}

	// Rule 7: the name asked for (RFC 6125; subjectAltName only, as Go and
	// browsers do).
	if opts.Name != "" {
		if err := leaf.VerifyHostname(strings.TrimSuffix(opts.Name, ".")); err != nil {
			return v.with(StatusPrincipalMismatch, fmt.Sprintf("certificate is valid for %s, not %s", coveredNames(leaf), opts.Name))
		}
	}
	if len(opts.AcceptNames) > 0 && !coversAny(leaf, opts.AcceptNames) {
		return v.with(StatusPrincipalMismatch, fmt.Sprintf("certificate is valid for %s, not for any of %s", coveredNames(leaf), strings.Join(opts.AcceptNames, ", ")))
	}

	// Rules 8 and 9: revocation (OCSP RFC 6960, CRL RFC 5280 section 5).
	v.Revocation = checkRevocation(ctx, v.Chain, opts)
	switch {
	case v.Revocation.Status == RevocationRevoked:
		return v.with(StatusRevoked, v.Revocation.describe())
	case v.Revocation.Status == RevocationBad:
		return v.with(StatusInvalid, "revocation answer cannot be trusted: "+v.Revocation.Detail)
	case v.Revocation.Status == RevocationUnknown && opts.Revocation == RevocationHard:
		return v.with(StatusInvalid, "revocation status unavailable and revocation is hard-fail: "+v.Revocation.Detail)
	}
	return v.with(StatusTrusted, "certificate chain verified for "+describeTarget(opts))
}

// tooMuch says why a presented chain is refused unread: more than
// maxCertificates certificates or more than maxChainBytes of them. It returns
// "" when the chain is within both bounds.
func tooMuch(certs []*x509.Certificate) string {
	if len(certs) > maxCertificates {
		return fmt.Sprintf("the peer sent %d certificates; at most %d are accepted", len(certs), maxCertificates)
	}
	size := 0
	for _, c := range certs {
		if c != nil {
			size += len(c.Raw)
		}
	}
	if size > maxChainBytes {
		return fmt.Sprintf("the peer sent %d bytes of certificates; at most %d are accepted", size, maxChainBytes)
	}
	return ""
}

func (v Verdict) with(s Status, reason string) Verdict {
	v.Status = s
	v.Reason = reason
	return v
}

func describeTarget(opts VerifyOptions) string {
	if opts.Name != "" {
		return opts.Name
	}
	return opts.Role.String() + " authentication"
}

// buildPath orders the presented certificates into a path from the leaf
// upwards. It runs only when crypto/x509 found no good path, to name what is
// wrong with the best one. Peers send chains out of order, with extras,
// cross-signs and several candidate issuers, so at each step it:
//   - stops at a certificate a trusted root issued (the trust store first,
//     as OpenSSL's X509_V_FLAG_TRUSTED_FIRST, its default, does);
//   - stops at a self-signed certificate;
//   - else takes, among the presented certificates whose subject (and key
//     identifier, when both carry one) names the current one's issuer, the
//     first that a trusted root issued, else the first inside its dates
//     whose key verifies the signature, else the first that verifies, else
//     the first by name.
//
// It also returns, per link i (path[i] issued by path[i+1]), the result of
// checking path[i]'s signature with path[i+1]'s key, so that each signature
// is checked once. Every check, and every question put to the trust store,
// is charged to sigs; when it runs out, the path so far is returned with
// errSignatureBudget.
func buildPath(certs []*x509.Certificate, roots *x509.CertPool, now time.Time, sigs *sigBudget) ([]*x509.Certificate, []error, error) {
	path := []*x509.Certificate{certs[0]}
	var linkErrs []error
	used := make([]bool, len(certs))
	used[0] = true
	for {
		cur := path[len(path)-1]
		anchored, err := sigs.anchored(cur, roots, now)
		if err != nil {
			return path, linkErrs, err
		}
		if anchored {
			break
		}
		self, err := sigs.selfSigned(cur)
		if err != nil {
			return path, linkErrs, err
		}
		if self {
			break
		}
		pick, pickRank := -1, 0
		var pickErr error
		for i := 1; i < len(certs) && pickRank < 3; i++ {
			c := certs[i]
			if used[i] || c == nil || !issuedBy(cur, c) {
				continue
			}
			err := sigs.signedBy(cur, c)
			if errors.Is(err, errSignatureBudget) {
				return path, linkErrs, err
			}
			rank := 0
			if err == nil {
				rank = 1
				if !now.Before(c.NotBefore) && !now.After(c.NotAfter) {
					rank = 2
					ok, aerr := sigs.anchored(c, roots, now)
					if aerr != nil {
						return path, linkErrs, aerr
					}
					if ok {
						rank = 3
					}
				}
			}
			if pick < 0 || rank > pickRank {
				pick, pickRank, pickErr = i, rank, err
			}
		}
		if pick < 0 {
			break
		}
		used[pick] = true
		path = append(path, certs[pick])
		linkErrs = append(linkErrs, pickErr)
	}
	return path, linkErrs, nil
}

// issuedBy reports whether parent's subject (and key id) names child's issuer.
func issuedBy(child, parent *x509.Certificate) bool {
	if !bytes.Equal(child.RawIssuer, parent.RawSubject) {
		return false
	}
	if len(child.AuthorityKeyId) > 0 && len(parent.SubjectKeyId) > 0 {
		return bytes.Equal(child.AuthorityKeyId, parent.SubjectKeyId)
	}
	return true
}

// quickPath asks crypto/x509 for a path from leaf through the presented
// intermediates to a trusted root, valid now for the role, leaving out only
// the leaf's own dates and critical extensions (rules 4-6 name those).
func quickPath(leaf *x509.Certificate, inter []*x509.Certificate, now time.Time, opts VerifyOptions) ([]*x509.Certificate, bool) {
	pool := x509.NewCertPool()
	for _, c := range inter {
		if c != nil {
			pool.AddCert(c)
		}
	}
	chains, err := neutral(leaf).Verify(x509.VerifyOptions{
		Roots:         opts.Roots,
		Intermediates: pool,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{opts.Role.extKeyUsage()},
	})
	if err != nil {
		return nil, false
	}
	chain := append([]*x509.Certificate(nil), chains[0]...)
	chain[0] = leaf
	return chain, true
}

// anchorChain asks crypto/x509 whether top chains to a trusted root. Top's
// own dates are left out (rules 3d and 5-6 judge them).
func anchorChain(top *x509.Certificate, roots *x509.CertPool, now time.Time, inter []*x509.Certificate) ([]*x509.Certificate, error) {
	t := neutral(top)
	pool := x509.NewCertPool()
	for _, c := range inter {
		pool.AddCert(c)
	}
	chains, err := t.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: pool,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, err
	}
	chains[0][0] = top
	return chains[0], nil
}

// anchorTail returns the part above the last fetched certificate, if it
// reaches a root.
func anchorTail(fetched []*x509.Certificate, roots *x509.CertPool, now time.Time) []*x509.Certificate {
	last := fetched[len(fetched)-1]
	ch, err := anchorChain(last, roots, now, nil)
	if err != nil {
		return nil
	}
	return ch[1:]
}

// neutral returns a copy of c that crypto/x509 will not reject for its own
// dates or critical extensions, which later rules judge with their own
// status. The signature covers the raw bytes, which are unchanged, so the
// copy still verifies exactly as c does.
func neutral(c *x509.Certificate) *x509.Certificate {
	n := *c
	n.NotBefore = time.Time{}
	n.NotAfter = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	n.UnhandledCriticalExtensions = nil
	return &n
}

// chainDefect looks for a chain broken in itself: links the peer sent that
// are not CA certificates, bad signatures, issuers outside their dates,
// unsupported critical extensions above the leaf, path-length constraint
// violations (RFC 5280 sections 4.2.1.9 and 6.1). It returns "" when the chain holds.
// linkErrs are the signature checks of the links the peer sent.
func chainDefect(chain []*x509.Certificate, linkErrs []error, now time.Time) string {
	for i, sigErr := range linkErrs {
		child, parent := chain[i], chain[i+1]
		if parent.Version == 3 && !parent.BasicConstraintsValid || parent.BasicConstraintsValid && !parent.IsCA {
			return fmt.Sprintf("%s signed %s but is not a CA certificate", name(parent), name(child))
		}
		if parent.KeyUsage != 0 && parent.KeyUsage&x509.KeyUsageCertSign == 0 {
			return fmt.Sprintf("%s signed %s but its key usage does not allow certificate signing", name(parent), name(child))
		}
		if sigErr != nil {
			return fmt.Sprintf("the signature on %s does not verify with the key of %s", name(child), name(parent))
		}
	}
	for i, c := range chain[1:] {
		if now.After(c.NotAfter) {
			return fmt.Sprintf("issuer %s expired on %s", name(c), c.NotAfter.UTC().Format(time.RFC3339))
		}
		if now.Before(c.NotBefore) {
			return fmt.Sprintf("issuer %s is not valid before %s", name(c), c.NotBefore.UTC().Format(time.RFC3339))
		}
		if len(c.UnhandledCriticalExtensions) > 0 {
			return fmt.Sprintf("issuer %s carries an unsupported critical extension %s", name(c), c.UnhandledCriticalExtensions[0])
		}
		// Intermediate CA certificates below c (self-issued ones do not count,
		// RFC 5280 section 4.2.1.9).
		below := 0
		for _, d := range chain[1 : i+1] {
			if !bytes.Equal(d.RawIssuer, d.RawSubject) {
				below++
			}
		}
		if c.BasicConstraintsValid && (c.MaxPathLen > 0 || c.MaxPathLenZero) && below > c.MaxPathLen {
			return fmt.Sprintf("path length constraint of %s (%d) exceeded by %d intermediate(s)", name(c), c.MaxPathLen, below)
		}
	}
	return ""
}

// verifyPath runs crypto/x509 over the exact path found, at a time inside the
// leaf's window, ignoring the leaf's critical extensions (judged separately).
func verifyPath(leaf *x509.Certificate, chain []*x509.Certificate, now time.Time, roots *x509.CertPool, usages []x509.ExtKeyUsage) error {
	l := neutral(leaf)
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := l.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     usages,
	})
	return err
}

// leafDefect says why the leaf is unfit for its role, or "".
func leafDefect(leaf *x509.Certificate, role Role) string {
	if !allowsUsage(leaf, role.extKeyUsage()) {
		return fmt.Sprintf("certificate is not for %s authentication (extended key usage)", role)
	}
	// Key usage bits a TLS peer key needs, as OpenSSL's purpose check has it:
	// a server signs (ECDHE), deciphers (RSA key exchange) or agrees keys; a
	// client signs or agrees keys.
	need := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement
	if role == RoleServer {
		need |= x509.KeyUsageKeyEncipherment
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&need == 0 {
		return fmt.Sprintf("certificate key usage does not allow %s authentication", role)
	}
	if len(leaf.UnhandledCriticalExtensions) > 0 {
		return fmt.Sprintf("certificate carries an unsupported critical extension %s", leaf.UnhandledCriticalExtensions[0])
	}
	return ""
}

// allowsUsage applies RFC 5280 section 4.2.1.12: no extension means any use.
func allowsUsage(c *x509.Certificate, want x509.ExtKeyUsage) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true
	}
	for _, u := range c.ExtKeyUsage {
		if u == want || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

// cleanErr turns a crypto/x509 error into one readable line, pulling out the
// reason crypto/x509 tucks inside an unknown-authority error.
func cleanErr(err error) string {
	var ua x509.UnknownAuthorityError
	s := err.Error()
	if errors.As(err, &ua) {
		if i := strings.Index(s, "possibly because of \""); i >= 0 {
			inner := s[i+len("possibly because of \""):]
			if j := strings.Index(inner, "\" while"); j >= 0 {
				s = inner[:j]
			}
		}
	}
	s = strings.ReplaceAll(s, `\"`, `"`)
	return strings.TrimPrefix(s, "x509: ")
}

// name is how a certificate is referred to in reasons.
func name(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return fmt.Sprintf("%q", c.Subject.CommonName)
	}
	return dn(c.Subject.String())
}

func dn(s string) string {
	if s == "" {
		return `""`
	}
	return fmt.Sprintf("%q", s)
}

func coveredNames(c *x509.Certificate) string {
	var ns []string
	ns = append(ns, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		ns = append(ns, ip.String())
	}
	ns = append(ns, c.EmailAddresses...)
	for _, u := range c.URIs {
		ns = append(ns, u.String())
	}
	if len(ns) == 0 {
		return "no name"
	}
	return strings.Join(ns, ", ")
}

// coversAny reports whether c covers one of names (see
// VerifyOptions.AcceptNames).
func coversAny(c *x509.Certificate, names []string) bool {
	for _, n := range names {
		switch {
		case strings.Contains(n, "://"):
			for _, u := range c.URIs {
				if u.String() == n {
					return true
				}
			}
		case strings.Contains(n, "@"):
			for _, e := range c.EmailAddresses {
				if strings.EqualFold(e, n) {
					return true
				}
			}
		default:
			if c.VerifyHostname(n) == nil {
				return true
			}
		}
	}
	return false
}
