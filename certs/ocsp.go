package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/crypto/ocsp"
)

// OCSP stapling for files-mode certificates (certmagic staples its own
// managed certificates). When the leaf names an OCSP responder and the file
// carries the issuer, passerelle fetches the response in the background and
// serves it stapled (RFC 6066 section 8), so clients that check revocation
// need not ask the responder themselves. It refreshes the response halfway
// to its nextUpdate. A failed fetch only leaves the certificate unstapled.

const (
	ocspTimeout      = 10 * time.Second
	ocspRetry        = 5 * time.Minute
	ocspDefaultValid = time.Hour // refresh interval when a response has no nextUpdate
	ocspMaxResponse  = 64 << 10
)

// stapleFile starts keeping an OCSP staple on c for as long as c is the
// certificate fs serves. Callers hold fs.mu (or own fs exclusively).
func (m *Manager) stapleFile(fs *fileSource, c *tls.Certificate) {
	leaf := c.Leaf
	if len(leaf.OCSPServer) == 0 {
		return
	}
	if len(c.Certificate) < 2 {
		fs.log.Debug("no OCSP staple: tls.cert_file does not carry the issuer certificate", "ocsp_server", leaf.OCSPServer[0])
		return
	}
	issuer, err := x509.ParseCertificate(c.Certificate[1])
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	fs.ocspCancel = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			wait := ocspRetry
			raw, resp, err := fetchOCSP(ctx, leaf, issuer)
			switch {
			case err != nil:
				if ctx.Err() != nil {
					return
				}
				fs.log.Warn("no OCSP staple", "ocsp_server", leaf.OCSPServer[0], "error", err.Error())
			case resp.Status == ocsp.Good:
				if !fs.setStaple(c, raw) {
					return // the certificate was replaced meanwhile
				}
				fs.log.Debug("OCSP response stapled", "ocsp_server", leaf.OCSPServer[0], "next_update", resp.NextUpdate)
				wait = ocspDefaultValid
				if !resp.NextUpdate.IsZero() {
					wait = time.Until(resp.NextUpdate) / 2
				}
			case resp.Status == ocsp.Revoked:
				fs.log.Error("the certificate in tls.cert_file is revoked; not stapling", "ocsp_server", leaf.OCSPServer[0], "revoked_at", resp.RevokedAt)
			default:
				fs.log.Warn("OCSP responder does not know the certificate; not stapling", "ocsp_server", leaf.OCSPServer[0])
			}
			if wait < time.Minute {
				wait = time.Minute
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
}

// setStaple serves a copy of c carrying the staple, if c is still the
// certificate being served. The copy keeps tls.Certificate immutable for
// connections that already hold the old pointer.
func (fs *fileSource) setStaple(c *tls.Certificate, raw []byte) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	cur := fs.cur.Load()
	if cur.Leaf != c.Leaf {
		return false
	}
	stapled := *cur
	stapled.OCSPStaple = raw
	fs.cur.Store(&stapled)
	return true
}

// fetchOCSP asks the leaf's first responder with an HTTP POST (RFC 6960
// appendix A.1) and checks the answer is signed for this certificate.
func fetchOCSP(ctx context.Context, leaf, issuer *x509.Certificate) ([]byte, *ocsp.Response, error) {
	reqDER, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("build OCSP request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, ocspTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, leaf.OCSPServer[0], bytes.NewReader(reqDER))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	req.Header.Set("Accept", "application/ocsp-response")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("OCSP responder answered %s", res.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(res.Body, ocspMaxResponse+1))
	if err != nil {
		return nil, nil, err
	}
	if len(raw) > ocspMaxResponse {
		return nil, nil, errors.New("OCSP response too large")
	}
	resp, err := ocsp.ParseResponseForCert(raw, leaf, issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("bad OCSP response: %w", err)
	}
	return raw, resp, nil
}
