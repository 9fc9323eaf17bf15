package secure

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"
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
	// RevocationUnknown: no source gave an answer.
	RevocationUnknown RevocationStatus = "unknown"
)

// Where a revocation answer came from.
const (
	SourceOCSPStaple = "ocsp-staple"
	SourceOCSP       = "ocsp"
	SourceCRL        = "crl"
	SourceCRLFile    = "crl-file"
)

// RevocationResult is what the revocation check of the leaf found.
type RevocationResult struct {
	Status RevocationStatus `json:"status,omitempty"`
	// Source is one of SourceOCSPStaple, SourceOCSP, SourceCRL, SourceCRLFile.
	Source string `json:"source,omitempty"`
	// URL is the responder or distribution point that answered.
	URL string `json:"url,omitempty"`
	// RevokedAt and ReasonCode (RFC 5280 section 5.3.1) when revoked.
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	ReasonCode int       `json:"reason_code,omitempty"`
	// Detail explains an unknown answer (what was tried and what failed).
	Detail string `json:"detail,omitempty"`
}

func (r RevocationResult) describe() string {
	s := "certificate revoked"
	if !r.RevokedAt.IsZero() {
		s += " on " + r.RevokedAt.UTC().Format(time.RFC3339)
	}
	if r.ReasonCode != 0 {
		s += fmt.Sprintf(" (reason code %d)", r.ReasonCode)
	}
	s += " according to " + r.Source
	if r.URL != "" {
		s += " " + r.URL
	}
	return s
}

// freshnessSlack tolerates clock skew on OCSP and CRL update times.
const freshnessSlack = 5 * time.Minute

// checkRevocation checks the leaf of chain (only the leaf, like OpenSSL's
// -crl_check without -crl_check_all): stapled OCSP first (no network), then
// CRLs the caller holds, then the OCSP responders, then the CRL distribution
// points.
func checkRevocation(ctx context.Context, chain []*x509.Certificate, opts VerifyOptions) RevocationResult {
	if opts.Revocation == RevocationOff {
		return RevocationResult{}
	}
	leaf := chain[0]
	if len(chain) < 2 {
		return RevocationResult{Status: RevocationUnknown, Detail: "no issuer to check revocation against"}
	}
	issuer := chain[1]
	now := opts.now()
	var tried []string

	if len(opts.OCSPStaple) > 0 {
		r, err := ocspAnswer(opts.OCSPStaple, leaf, issuer, now)
		if err == nil && r.Status != RevocationUnknown {
			r.Source = SourceOCSPStaple
			return r
		}
		tried = append(tried, fmt.Sprintf("stapled OCSP response: %v", errOr(err, "status unknown")))
	}
	for _, crl := range opts.CRLs {
		if r, ok := crlAnswer(crl, leaf, issuer); ok {
			r.Source = SourceCRLFile
			return r
		}
	}
	if len(opts.CRLs) > 0 {
		tried = append(tried, fmt.Sprintf("%d CRL file(s): none issued by %s", len(opts.CRLs), name(issuer)))
	}
	hc := opts.httpClient()
	for _, u := range leaf.OCSPServer {
		r, err := fetchOCSP(ctx, hc, u, leaf, issuer, now)
		if err == nil && r.Status != RevocationUnknown {
			r.Source, r.URL = SourceOCSP, u
			return r
		}
		tried = append(tried, fmt.Sprintf("OCSP %s: %v", u, errOr(err, "status unknown")))
	}
	for _, u := range leaf.CRLDistributionPoints {
		crl, err := fetchCRL(ctx, hc, u)
		if err == nil {
			if r, ok := crlAnswer(crl, leaf, issuer); ok {
				r.Source, r.URL = SourceCRL, u
				return r
			}
			err = fmt.Errorf("CRL not issued by %s or badly signed", name(issuer))
		}
		tried = append(tried, fmt.Sprintf("CRL %s: %v", u, err))
	}
	if len(tried) == 0 {
		return RevocationResult{Status: RevocationUnknown, Detail: "the certificate names no OCSP responder and no CRL distribution point"}
	}
	for _, t := range tried {
		opts.logger().Debug("revocation source did not answer", "detail", t)
	}
	return RevocationResult{Status: RevocationUnknown, Detail: strings.Join(tried, "; ")}
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// ocspAnswer parses an OCSP response for leaf, checking the responder's
// signature (ocsp.ParseResponseForCert) and its freshness (RFC 6960 section
// 3.2).
func ocspAnswer(der []byte, leaf, issuer *x509.Certificate, now time.Time) (RevocationResult, error) {
	resp, err := ocsp.ParseResponseForCert(der, leaf, issuer)
	if err != nil {
		return RevocationResult{}, fmt.Errorf("bad OCSP response: %w", err)
	}
	if resp.ThisUpdate.After(now.Add(freshnessSlack)) {
		return RevocationResult{}, fmt.Errorf("OCSP response not valid before %s", resp.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if !resp.NextUpdate.IsZero() && now.After(resp.NextUpdate.Add(freshnessSlack)) {
		return RevocationResult{}, fmt.Errorf("OCSP response stale since %s", resp.NextUpdate.UTC().Format(time.RFC3339))
	}
	switch resp.Status {
	case ocsp.Good:
		return RevocationResult{Status: RevocationGood}, nil
	case ocsp.Revoked:
		return RevocationResult{Status: RevocationRevoked, RevokedAt: resp.RevokedAt, ReasonCode: resp.RevocationReason}, nil
	}
	return RevocationResult{Status: RevocationUnknown}, nil
}

// fetchOCSP asks a responder over HTTP POST (RFC 6960 appendix A.1).
func fetchOCSP(ctx context.Context, hc *http.Client, url string, leaf, issuer *x509.Certificate, now time.Time) (RevocationResult, error) {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return RevocationResult{}, fmt.Errorf("only http and https responders are asked")
	}
	reqDER, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return RevocationResult{}, fmt.Errorf("build OCSP request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(reqDER))
	if err != nil {
		return RevocationResult{}, fmt.Errorf("OCSP request %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	req.Header.Set("Accept", "application/ocsp-response")
	body, err := doHTTP(hc, req, maxOCSPBytes)
	if err != nil {
		return RevocationResult{}, err
	}
	return ocspAnswer(body, leaf, issuer, now)
}

func fetchCRL(ctx context.Context, hc *http.Client, url string) (*x509.RevocationList, error) {
	body, err := httpGet(ctx, hc, url, maxCRLBytes)
	if err != nil {
		return nil, err
	}
	return ParseCRL(body)
}

// ParseCRL reads a CRL in DER or PEM ("X509 CRL") form.
func ParseCRL(data []byte) (*x509.RevocationList, error) {
	if b, _ := pem.Decode(data); b != nil {
		if b.Type != "X509 CRL" {
			return nil, fmt.Errorf("parse CRL: PEM block is %q, want \"X509 CRL\"", b.Type)
		}
		data = b.Bytes
	}
	crl, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, fmt.Errorf("parse CRL: %w", err)
	}
	return crl, nil
}

// crlAnswer reports whether crl speaks for leaf (same issuer, signature
// verified with the issuer's key) and, if so, what it says.
func crlAnswer(crl *x509.RevocationList, leaf, issuer *x509.Certificate) (RevocationResult, bool) {
	if !bytes.Equal(crl.RawIssuer, leaf.RawIssuer) || crl.CheckSignatureFrom(issuer) != nil {
		return RevocationResult{}, false
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber != nil && e.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
			return RevocationResult{Status: RevocationRevoked, RevokedAt: e.RevocationTime, ReasonCode: e.ReasonCode}, true
		}
	}
	return RevocationResult{Status: RevocationGood}, true
}
