package secure

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Size limits for what a fetch may return: a hostile URL must not make a
// client read without bound.
const (
	maxIssuerBytes = 1 << 20 // one certificate
)

// newFetchClient returns the HTTP client that fetches AIA issuers, OCSP
// responses and CRLs when none is configured. Every request ends within 5
// seconds; the caller's context (the handshake deadline) may end it sooner.
func newFetchClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second}
}

// fetchIssuers follows the AIA caIssuers URLs (RFC 5280 section 4.2.2.1)
// upwards from top, as browsers do for servers that forget an intermediate,
// until a fetched certificate chains to a trusted root. It returns the fetched
// certificates, lowest first, and the first URL used. Signature checks are
// charged to sigs.
func fetchIssuers(ctx context.Context, top *x509.Certificate, opts VerifyOptions, sigs *sigBudget) ([]*x509.Certificate, string, error) {
	var fetched []*x509.Certificate
	var firstURL string
	cur := top
	for depth := 0; depth < 4; depth++ {
		var next *x509.Certificate
		var lastErr error
		for _, u := range cur.IssuingCertificateURL {
			c, err := fetchCert(ctx, opts.httpClient(), u)
			if err != nil {
				lastErr = err
				continue
			}
			if !issuedBy(cur, c) || sigs.signedBy(cur, c) != nil {
				lastErr = fmt.Errorf("certificate at %s did not issue %s", u, name(cur))
				continue
			}
			if firstURL == "" {
				firstURL = u
			}
			next = c
			break
		}
		if next == nil {
			if lastErr == nil {
				lastErr = fmt.Errorf("%s names no issuer URL", name(cur))
			}
			return nil, "", lastErr
		}
		fetched = append(fetched, next)
		if _, err := anchorChain(top, opts.Roots, opts.now(), fetched); err == nil {
			return fetched, firstURL, nil
		}
		cur = next
	}
	return nil, "", errors.New("no trusted root within four fetched issuers")
}

// fetchCert gets one certificate, DER (the usual application/pkix-cert) or PEM.
func fetchCert(ctx context.Context, hc *http.Client, url string) (*x509.Certificate, error) {
	body, err := httpGet(ctx, hc, url, maxIssuerBytes)
	if err != nil {
		return nil, err
	}
	if b, _ := pem.Decode(body); b != nil {
		body = b.Bytes
	}
	c, err := x509.ParseCertificate(body)
	if err != nil {
		return nil, fmt.Errorf("issuer at %s: %w", url, err)
	}
	return c, nil
}

func httpGet(ctx context.Context, hc *http.Client, url string, limit int64) ([]byte, error) {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return nil, fmt.Errorf("fetch %s: only http and https URLs are fetched", url)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	return doHTTP(hc, req, limit)
}

func doHTTP(hc *http.Client, req *http.Request, limit int64) ([]byte, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", req.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: HTTP status %s", req.URL, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", req.URL, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("fetch %s: response larger than %d bytes", req.URL, limit)
	}
	return body, nil
}
