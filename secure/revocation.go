package secure

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/passerelle/passerelle/certs/revocation"
)

// RevocationMode says how hard the revocation check tries and what an
// unanswered check means. The zero value is RevocationSoft.
type RevocationMode uint8

const (
	// RevocationSoft checks the stapled OCSP response, the CRLs given, the
	// OCSP responder and the CRL distribution points; a certificate is
	// revoked only when one of them says so, and an unreachable source does
	// not fail the connection. The default.
	RevocationSoft RevocationMode = iota
	// RevocationOff checks nothing.
	RevocationOff
	// RevocationHard checks like RevocationSoft but fails (status invalid)
	// when no source gives an answer, including for a certificate that names
	// no OCSP responder and no CRL distribution point.
	RevocationHard
)

// ParseRevocationMode reads "off", "soft" (or "soft-fail") and "hard" (or
// "hard-fail").
func ParseRevocationMode(s string) (RevocationMode, error) {
	switch strings.ToLower(s) {
	case "soft", "soft-fail", "":
		return RevocationSoft, nil
	case "off", "none":
		return RevocationOff, nil
	case "hard", "hard-fail":
		return RevocationHard, nil
	}
	return RevocationSoft, fmt.Errorf("revocation mode %q: want off, soft or hard", s)
}

func (m RevocationMode) String() string {
	switch m {
	case RevocationOff:
		return "off"
	case RevocationHard:
		return "hard"
	default:
		return "soft"
	}
}

// RevocationStatus is what the revocation check concluded.
type RevocationStatus string

const (
	// RevocationUnchecked: the check was off or never reached (an earlier
	// rule decided the verdict).
	RevocationUnchecked RevocationStatus = ""
	// RevocationGood: a source said the certificate is not revoked.
	RevocationGood RevocationStatus = "good"
	// RevocationRevoked: a source said the certificate is revoked.
	RevocationRevoked RevocationStatus = "revoked"
	// RevocationUnknown: no source gave a usable answer.
	RevocationUnknown RevocationStatus = "unknown"
	// RevocationBad: a source answered with something that does not verify
	// (a forged or broken OCSP response or CRL).
	RevocationBad RevocationStatus = "bad-answer"
)

// RevocationResult is what the revocation check of the leaf found.
type RevocationResult struct {
	Status RevocationStatus `json:"status,omitempty"`
	// Source is where the answer came from: "ocsp-staple", "crl-file",
	// "ocsp" or "crl" (the certs/revocation Source* constants).
	Source string `json:"source,omitempty"`
	// URL is the responder or distribution point that answered.
	URL string `json:"url,omitempty"`
	// RevokedAt and ReasonCode (RFC 5280 section 5.3.1) when revoked.
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	ReasonCode int       `json:"reason_code,omitempty"`
	// Detail explains an unknown or bad answer (what was tried and what
	// failed).
	Detail string `json:"detail,omitempty"`
}

func (r RevocationResult) describe() string {
	s := "certificate revoked"
	if !r.RevokedAt.IsZero() {
		s += " on " + r.RevokedAt.UTC().Format(time.RFC3339)
	}
	if r.ReasonCode != 0 {
		s += fmt.Sprintf(" (%s)", revocation.Reason(r.ReasonCode))
	}
	s += " according to " + r.Source
	if r.URL != "" {
		s += " " + r.URL
	}
	return s
}

// checkRevocation checks the leaf of chain (only the leaf, like OpenSSL's
// -crl_check without -crl_check_all) with certs/revocation: the stapled OCSP
// response, the CRLs given, the OCSP responders, then the CRL distribution
// points.
func checkRevocation(ctx context.Context, chain []*x509.Certificate, opts VerifyOptions) RevocationResult {
	if opts.Revocation == RevocationOff {
		return RevocationResult{}
	}
	if len(chain) < 2 {
		// A trusted self-signed leaf has no issuer to ask.
		return RevocationResult{Status: RevocationUnknown, Detail: "no issuer to check revocation against"}
	}
	res, err := revocation.Check(ctx, chain[0], chain[1], revocation.Options{
		HTTPClient: opts.httpClient(),
		Stapled:    opts.OCSPStaple,
		CRLs:       opts.CRLs,
		Now:        opts.now(),
		Cache:      opts.RevocationCache,
		Logger:     opts.Logger,
	})
	out := RevocationResult{Source: res.Source, URL: res.URL}
	var bad *revocation.InvalidResponseError
	switch {
	case errors.As(err, &bad):
		out.Status, out.Source, out.URL, out.Detail = RevocationBad, bad.Source, bad.URL, cleanRevErr(err)
	case res.Status == revocation.Revoked:
		out.Status, out.RevokedAt, out.ReasonCode = RevocationRevoked, res.RevokedAt, int(res.Reason)
	case res.Status == revocation.Good:
		out.Status = RevocationGood
	default:
		out.Status = RevocationUnknown
		out.Detail = "the certificate names no OCSP responder and no CRL distribution point"
		if err != nil {
			out.Detail = cleanRevErr(err)
		}
	}
	return out
}

// newRevocationCache is a Server's cache of revocation answers. It keeps
// them a minute at most, so that a client certificate revoked at its CA is
// refused within a minute even when the OCSP response or CRL that said it
// was good is valid for days.
func newRevocationCache() *revocation.Cache {
	return revocation.NewCache(revocation.CacheConfig{MaxAge: time.Minute})
}

func cleanRevErr(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
