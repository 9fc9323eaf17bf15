package revocation

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Status is what the revocation sources say about a certificate.
type Status string

// The three answers of RFC 6960 section 2.2, also used for CRLs.
const (
	// Good: a verified, current source says the certificate is not revoked.
	Good Status = "good"
	// Revoked: a verified source lists the certificate as revoked.
	Revoked Status = "revoked"
	// Unknown: no source knew the certificate, or no source was available.
	Unknown Status = "unknown"
)

// Where an answer came from, as Result.Source reports it.
const (
	SourceOCSPStaple = "ocsp-staple" // the OCSP response stapled in the TLS handshake
	SourceCRLFile    = "crl-file"    // a CRL given by the user (Options.CRLs)
	SourceOCSP       = "ocsp"        // the OCSP responder named in the authorityInfoAccess extension
	SourceCRL        = "crl"         // a CRL fetched from a cRLDistributionPoints URL
)

// Sources selects the revocation sources Check consults.
type Sources uint8

// The sources, in the order Check consults them.
const (
	UseStaple Sources = 1 << iota
	UseCRLFiles
	UseOCSP
	UseCRLDistributionPoints

	// UseOffline uses only what is already at hand: no network access.
	UseOffline = UseStaple | UseCRLFiles
	// UseAll is every source; the zero Sources means the same.
	UseAll = UseStaple | UseCRLFiles | UseOCSP | UseCRLDistributionPoints
)

// Defaults used when the corresponding Options field is zero.
const (
	DefaultTimeout = 5 * time.Second
	DefaultSkew    = 5 * time.Minute
	// DefaultMaxCRLSize bounds a downloaded CRL. The largest public CRLs
	// hold some hundred thousand entries, a few megabytes.
	DefaultMaxCRLSize = 10 << 20
)

// Options tunes Check. The zero value checks every source with a 5s timeout
// per request.
type Options struct {
	// HTTPClient fetches OCSP responses and CRLs. Default: a client with a
	// DefaultTimeout timeout per request.
	HTTPClient *http.Client
	// Stapled is the OCSP response the server stapled in the handshake
	// (tls.ConnectionState.OCSPResponse), if any.
	Stapled []byte
	// CRLs are extra CRLs, typically read with LoadCRLFile. Those not
	// issued by the certificate's issuer are ignored.
	CRLs []*x509.RevocationList
	// Now is the time to judge at. Default: time.Now().
	Now time.Time
	// Sources selects the sources. Default (zero): UseAll.
	Sources Sources
	// Skew is the clock difference tolerated on thisUpdate and nextUpdate.
	// Default DefaultSkew.
	Skew time.Duration
	// MaxCRLSize bounds a downloaded CRL, in bytes. Default DefaultMaxCRLSize.
	MaxCRLSize int64
	// Cache, when set, keeps the answers fetched from OCSP responders and
	// CRL distribution points for the next checks, and makes concurrent
	// checks share one request per URL. Default: none, every check asks the
	// network.
	Cache *Cache
	// Logger receives a debug line per source consulted. Default: discard.
	Logger *slog.Logger
}

// Result is the answer of Check.
type Result struct {
	Status Status
	// Source is the source that gave the answer (SourceOCSPStaple,
	// SourceCRLFile, SourceOCSP or SourceCRL), empty when none did.
	Source string
	// URL is the responder or distribution point the answer came from, for
	// network sources.
	URL string
	// RevokedAt and Reason are set when Status is Revoked.
	RevokedAt time.Time
	Reason    Reason
	// ThisUpdate and NextUpdate are those of the OCSP response or CRL.
	ThisUpdate time.Time
	NextUpdate time.Time
}

// Check tells whether leaf, issued by issuer, is revoked. The sources are
// consulted in this order, each only if selected and available:
//
//  1. the stapled OCSP response (Options.Stapled),
//  2. the CRLs given in Options.CRLs,
//  3. the OCSP responders of the leaf's authorityInfoAccess extension,
//  4. the CRLs at the leaf's cRLDistributionPoints (http and https URLs).
//
// Every OCSP response and CRL is verified against issuer (OCSP responses may
// also be signed by a delegated responder the issuer certified with the
// OCSPSigning usage). The first source that revokes the certificate, or
// current information that it is good, decides. An "unknown" OCSP answer
// passes on to the next source; if nothing decides after it, the Result is
// Unknown with that responder as Source, and the error wraps
// ErrUnknownCertificate.
//
// Errors: an answer that fails verification stops the check with an
// *InvalidResponseError; it is never read as good. When no source decides
// and some could not be reached or only had stale information, the error
// joins one *UnreachableError per such source (errors.As finds the first),
// and the Result is Unknown: soft-fail callers ignore it, hard-fail callers
// fail. With no source available at all, the Result is Unknown with an
// empty Source and a nil error. A ctx cancelled during a fetch ends the
// check with an error wrapping ctx's.
func Check(ctx context.Context, leaf, issuer *x509.Certificate, opts Options) (Result, error) {
	if leaf == nil || issuer == nil {
		return Result{Status: Unknown}, errors.New("revocation: check: need both the certificate and its issuer")
	}
	if !bytes.Equal(leaf.RawIssuer, issuer.RawSubject) {
		return Result{Status: Unknown}, fmt.Errorf("revocation: check: %q is not the issuer of %q (issued by %q)", issuer.Subject.String(), leaf.Subject.String(), leaf.Issuer.String())
	}
	c := newChecker(leaf, issuer, opts)
	return c.run(ctx)
}

type checker struct {
	leaf, issuer *x509.Certificate
	opts         Options
	client       *http.Client
	log          *slog.Logger
	now          time.Time
	unreachable  []error
	unknown      *Result
}

func newChecker(leaf, issuer *x509.Certificate, opts Options) *checker {
	if opts.Sources == 0 {
		opts.Sources = UseAll
	}
	if opts.Skew <= 0 {
		opts.Skew = DefaultSkew
	}
	if opts.MaxCRLSize <= 0 {
		opts.MaxCRLSize = DefaultMaxCRLSize
	}
	c := &checker{leaf: leaf, issuer: issuer, opts: opts, client: opts.HTTPClient, log: loggerOrDiscard(opts.Logger), now: opts.Now}
	if c.client == nil {
		c.client = &http.Client{Timeout: DefaultTimeout}
	}
	if c.now.IsZero() {
		c.now = time.Now()
	}
	return c
}

func (c *checker) run(ctx context.Context) (Result, error) {
	serial := fmt.Sprintf("%x", c.leaf.SerialNumber)
	steps := []struct {
		use  Sources
		name string
		do   func(context.Context) (Result, bool, error)
	}{
		{UseStaple, SourceOCSPStaple, c.staple},
		{UseCRLFiles, SourceCRLFile, c.crlFiles},
		{UseOCSP, SourceOCSP, c.ocspServers},
		{UseCRLDistributionPoints, SourceCRL, c.distributionPoints},
	}
	for _, s := range steps {
		if c.opts.Sources&s.use == 0 {
			continue
		}
		res, done, err := s.do(ctx)
		if err != nil {
			c.log.Debug("revocation source failed", "serial", serial, "source", s.name, "error", err)
			return Result{Status: Unknown}, err
		}
		if done {
			c.log.Debug("revocation decided", "serial", serial, "source", res.Source, "url", res.URL, "status", string(res.Status))
			return res, nil
		}
	}
	if c.unknown != nil {
		u := &UnreachableError{Source: c.unknown.Source, URL: c.unknown.URL, Err: ErrUnknownCertificate}
		return *c.unknown, errors.Join(append([]error{u}, c.unreachable...)...)
	}
	if len(c.unreachable) > 0 {
		return Result{Status: Unknown}, errors.Join(c.unreachable...)
	}
	return Result{Status: Unknown}, nil
}

// consider files a verified verdict: it decides, or is remembered as an
// unknown or stale answer. It reports whether the check is over.
func (c *checker) consider(v verdict, source, url string) (Result, bool) {
	v.res.Source, v.res.URL = source, url
	if !v.usable() {
		c.unreachable = append(c.unreachable, &UnreachableError{Source: source, URL: url, Err: fmt.Errorf("%w (thisUpdate %s, nextUpdate %s)", ErrStale, fmtTime(v.res.ThisUpdate), fmtTime(v.res.NextUpdate))})
		return Result{}, false
	}
	if v.res.Status == Unknown {
		if c.unknown == nil {
			r := v.res
			c.unknown = &r
		}
		return Result{}, false
	}
	return v.res, true
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}

// note records a failure: unreachable sources are remembered, anything else
// ends the check.
// Errors that already name their source (see located) are left as they
// are: they may be shared with other checks.
func (c *checker) note(err error, source, url string) error {
	var ue *UnreachableError
	if errors.As(err, &ue) {
		if ue.Source == "" {
			ue.Source, ue.URL = source, url
		}
		c.unreachable = append(c.unreachable, ue)
		return nil
	}
	var ie *InvalidResponseError
	if errors.As(err, &ie) && ie.Source == "" {
		ie.Source, ie.URL = source, url
	}
	return err
}

func (c *checker) staple(context.Context) (Result, bool, error) {
	if len(c.opts.Stapled) == 0 {
		return Result{}, false, nil
	}
	v, err := verifyOCSP(c.opts.Stapled, c.leaf, c.issuer, c.now, c.opts.Skew)
	if err != nil {
		return Result{}, false, c.note(err, SourceOCSPStaple, "")
	}
	res, done := c.consider(v, SourceOCSPStaple, "")
	return res, done, nil
}

// crlFiles reads every CRL of the issuer among the files. A final
// revocation in any of them decides; otherwise the newest one speaks (a
// certificate on hold in an old CRL may have been released since).
func (c *checker) crlFiles(context.Context) (Result, bool, error) {
	var newest *verdict
	for _, crl := range c.opts.CRLs {
		if crl == nil || !crlFor(crl, c.issuer) {
			continue
		}
		v, err := verifyCRL(crl, c.leaf, c.issuer, false, c.now, c.opts.Skew)
		if err != nil {
			return Result{}, false, c.note(err, SourceCRLFile, "")
		}
		if v.res.Status == Revoked && v.res.Reason != ReasonCertificateHold {
			v.res.Source = SourceCRLFile
			return v.res, true, nil
		}
		if newest == nil || v.res.ThisUpdate.After(newest.res.ThisUpdate) {
			newest = &v
		}
	}
	if newest == nil {
		return Result{}, false, nil
	}
	res, done := c.consider(*newest, SourceCRLFile, "")
	return res, done, nil
}

func (c *checker) ocspServers(ctx context.Context) (Result, bool, error) {
	for _, u := range httpURLs(c.leaf.OCSPServer) {
		key := "ocsp " + u + " " + string(c.issuer.RawSubjectPublicKeyInfo) + " " + c.leaf.SerialNumber.Text(16)
		value, err := c.opts.Cache.get(ctx, key, c.now, func() (fetched, error) {
			der, header, err := fetchOCSP(ctx, c.client, u, c.leaf, c.issuer)
			if err != nil {
				return fetched{}, located(err, SourceOCSP, u)
			}
			f := fetched{value: der, size: int64(len(der))}
			// Only a verified, current, decisive answer is kept.
			if v, err := verifyOCSP(der, c.leaf, c.issuer, c.now, c.opts.Skew); err == nil && !v.stale && v.res.Status != Unknown {
				f.keep = keepUntil(c.now, v.res.NextUpdate, header)
			}
			return f, nil
		})
		if err != nil {
			if err := c.note(err, SourceOCSP, u); err != nil {
				return Result{}, false, err
			}
			continue
		}
		v, err := verifyOCSP(value.([]byte), c.leaf, c.issuer, c.now, c.opts.Skew)
		if err != nil {
			if err := c.note(err, SourceOCSP, u); err != nil {
				return Result{}, false, err
			}
			continue
		}
		if res, done := c.consider(v, SourceOCSP, u); done {
			return res, true, nil
		}
	}
	return Result{}, false, nil
}

// fetchedCRL is a downloaded CRL as the cache keeps it, with the issuer
// key whose signature check it passed, so that a check under the same
// issuer does not hash the whole list again.
type fetchedCRL struct {
	crl        *x509.RevocationList
	verifiedBy []byte // RawSubjectPublicKeyInfo, or nil
}

func (c *checker) distributionPoints(ctx context.Context) (Result, bool, error) {
	for _, u := range httpURLs(c.leaf.CRLDistributionPoints) {
		value, err := c.opts.Cache.get(ctx, "crl "+u, c.now, func() (fetched, error) {
			crls, size, header, err := fetchCRL(ctx, c.client, u, c.opts.MaxCRLSize)
			if err != nil {
				return fetched{}, located(err, SourceCRL, u)
			}
			f := fetched{value: &fetchedCRL{crl: crls[0]}, size: size}
			// Only a CRL that verified and is current is kept.
			if crlMismatch(crls[0], c.issuer) == "" && crls[0].CheckSignatureFrom(c.issuer) == nil {
				f.value = &fetchedCRL{crl: crls[0], verifiedBy: c.issuer.RawSubjectPublicKeyInfo}
				if !outsideWindow(crls[0].ThisUpdate, crls[0].NextUpdate, c.now, c.opts.Skew) {
					f.keep = keepUntil(c.now, crls[0].NextUpdate, header)
				}
			}
			return f, nil
		})
		if err != nil {
			if err := c.note(err, SourceCRL, u); err != nil {
				return Result{}, false, err
			}
			continue
		}
		fc := value.(*fetchedCRL)
		if why := crlMismatch(fc.crl, c.issuer); why != "" {
			return Result{}, false, &InvalidResponseError{Source: SourceCRL, URL: u, Err: errors.New(why)}
		}
		signed := bytes.Equal(fc.verifiedBy, c.issuer.RawSubjectPublicKeyInfo)
		v, err := verifyCRL(fc.crl, c.leaf, c.issuer, signed, c.now, c.opts.Skew)
		if err != nil {
			return Result{}, false, c.note(err, SourceCRL, u)
		}
		if res, done := c.consider(v, SourceCRL, u); done {
			return res, true, nil
		}
	}
	return Result{}, false, nil
}

// located names the source of a fetch error before the error is shared
// with other checks waiting for the same fetch (see Cache), so that note
// need not write to it.
func located(err error, source, url string) error {
	var ue *UnreachableError
	var ie *InvalidResponseError
	switch {
	case errors.As(err, &ue):
		ue.Source, ue.URL = source, url
	case errors.As(err, &ie):
		ie.Source, ie.URL = source, url
	}
	return err
}

// httpURLs keeps the http and https URLs; ldap and other schemes found in
// older certificates are skipped.
func httpURLs(urls []string) []string {
	var out []string
	for _, u := range urls {
		l := strings.ToLower(u)
		if strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://") {
			out = append(out, u)
		}
	}
	return out
}
