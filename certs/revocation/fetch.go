package revocation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/crypto/ocsp"
)

// maxOCSPResponse bounds a fetched OCSP response. A response with a delegated
// responder certificate is a few kilobytes.
const maxOCSPResponse = 1 << 20

// ErrNoOCSPServer is returned by Staple for a certificate without an OCSP
// responder URL in its authorityInfoAccess extension.
var ErrNoOCSPServer = errors.New("the certificate names no OCSP responder")

// fetchOCSP POSTs an OCSP request for leaf to url (RFC 6960 appendix A.1).
// POST rather than GET so that no proxy or path cleaning can mangle the
// base64 request.
// It also returns the answer's HTTP header.
func fetchOCSP(ctx context.Context, client *http.Client, url string, leaf, issuer *x509.Certificate) ([]byte, http.Header, error) {
	reqDER, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return nil, nil, fmt.Errorf("revocation: build OCSP request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(reqDER))
	if err != nil {
		return nil, nil, &InvalidResponseError{Err: fmt.Errorf("bad responder URL: %w", err)}
	}
	req.Header.Set("Content-Type", ContentTypeOCSPRequest)
	req.Header.Set("Accept", ContentTypeOCSPResponse)
	return fetch(ctx, client, req, maxOCSPResponse)
}

// fetchCRL downloads and parses the CRL at url. It also returns the size
// of the download and the answer's HTTP header.
func fetchCRL(ctx context.Context, client *http.Client, url string, max int64) ([]*x509.RevocationList, int64, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, nil, &InvalidResponseError{Err: fmt.Errorf("bad distribution point URL: %w", err)}
	}
	req.Header.Set("Accept", ContentTypeCRL)
	body, header, err := fetch(ctx, client, req, max)
	if err != nil {
		return nil, 0, nil, err
	}
	crls, err := ParseCRLs(body)
	if err != nil {
		return nil, 0, nil, &InvalidResponseError{Err: err}
	}
	return crls, int64(len(body)), header, nil
}

// fetch performs req and returns the body and header of a 200 answer of
// at most max bytes. Failing to get one is an *UnreachableError, except
// when the caller cancelled ctx; a larger answer is an
// *InvalidResponseError.
func fetch(ctx context.Context, client *http.Client, req *http.Request, max int64) ([]byte, http.Header, error) {
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil, nil, ctxError(ctx)
		}
		return nil, nil, &UnreachableError{Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, &UnreachableError{Err: fmt.Errorf("HTTP status %s", resp.Status)}
	}
	if resp.ContentLength > max {
		return nil, nil, &InvalidResponseError{Err: fmt.Errorf("answer larger than %d bytes (Content-Length %d)", max, resp.ContentLength)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, nil, &UnreachableError{Err: fmt.Errorf("read answer: %w", err)}
	}
	if int64(len(body)) > max {
		return nil, nil, &InvalidResponseError{Err: fmt.Errorf("answer larger than %d bytes", max)}
	}
	return body, resp.Header, nil
}

// ctxError is the error of a check whose ctx ended: a deadline is a source
// that did not answer in time, an *UnreachableError; a cancellation means
// the caller no longer wants the answer, and is no statement about the
// source.
func ctxError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("revocation: %w", ctx.Err())
	}
	return &UnreachableError{Err: ctx.Err()}
}

// Staple fetches an OCSP response for a server's own certificate, to put in
// tls.Certificate.OCSPStaple. It asks each responder of the leaf's
// authorityInfoAccess extension in turn and returns the first response that
// verifies against issuer and is current, whether it says good or revoked (a
// server stapling its own revocation tells clients the truth). A nil client
// means one with a DefaultTimeout timeout.
//
// Errors: one wrapping ErrNoOCSPServer when the certificate names no
// responder; otherwise one *UnreachableError or *InvalidResponseError per
// responder, joined (an "unknown" answer is an *InvalidResponseError, as
// stapling it would be useless), or ctx's error when it was cancelled.
func Staple(ctx context.Context, leaf, issuer *x509.Certificate, client *http.Client) ([]byte, error) {
	if leaf == nil || issuer == nil {
		return nil, errors.New("revocation: staple: need both the certificate and its issuer")
	}
	if client == nil {
		client = &http.Client{Timeout: DefaultTimeout}
	}
	urls := httpURLs(leaf.OCSPServer)
	if len(urls) == 0 {
		return nil, fmt.Errorf("revocation: staple %q: %w", leaf.Subject.String(), ErrNoOCSPServer)
	}
	var errs []error
	for _, u := range urls {
		der, _, err := fetchOCSP(ctx, client, u, leaf, issuer)
		if err == nil {
			var v verdict
			v, err = verifyOCSP(der, leaf, issuer, time.Now(), DefaultSkew)
			switch {
			case err != nil:
			case v.stale:
				err = &UnreachableError{Err: fmt.Errorf("%w (thisUpdate %s, nextUpdate %s)", ErrStale, fmtTime(v.res.ThisUpdate), fmtTime(v.res.NextUpdate))}
			case v.res.Status == Unknown:
				err = &InvalidResponseError{Err: ErrUnknownCertificate}
			default:
				return der, nil
			}
		}
		var ue *UnreachableError
		var ie *InvalidResponseError
		switch {
		case errors.As(err, &ue):
			ue.Source, ue.URL = SourceOCSP, u
		case errors.As(err, &ie):
			ie.Source, ie.URL = SourceOCSP, u
		default:
			return nil, err
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// RefreshTime tells a stapling server when to fetch a new staple: halfway
// between the response's thisUpdate and nextUpdate, the practice of RFC 5019
// section 6.1 clients and of certmagic. A response without nextUpdate is
// refreshed an hour after thisUpdate. The signature is not checked here;
// Staple checked it when fetching.
func RefreshTime(staple []byte) (time.Time, error) {
	resp, err := ocsp.ParseResponse(staple, nil)
	if err != nil {
		return time.Time{}, fmt.Errorf("revocation: parse staple: %w", err)
	}
	if resp.NextUpdate.IsZero() {
		return resp.ThisUpdate.Add(time.Hour), nil
	}
	return resp.ThisUpdate.Add(resp.NextUpdate.Sub(resp.ThisUpdate) / 2), nil
}
