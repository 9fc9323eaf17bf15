package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/passerelle/passerelle/certs/revocation"
)

// OCSP stapling for files-mode certificates (certmagic staples its own
// managed certificates). When the leaf names an OCSP responder and the file
// carries the issuer, passerelle fetches the response in the background with
// revocation.Staple (which verifies it) and serves it stapled (RFC 6066
// section 8), so clients that check revocation need not ask the responder
// themselves. It refreshes the response when revocation.RefreshTime says, and
// retries a failed fetch every few minutes; a failure only leaves the
// certificate unstapled.

const (
	ocspRetry   = 5 * time.Minute
	ocspMinWait = time.Minute
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
			raw, err := revocation.Staple(ctx, leaf, issuer, nil)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				fs.log.Warn("no OCSP staple", "ocsp_server", leaf.OCSPServer[0], "error", err.Error())
			} else {
				if !fs.setStaple(c, raw) {
					return // the certificate was replaced meanwhile
				}
				// Staple verified the response; parsing again only reads
				// the status for the log.
				if resp, err := ocsp.ParseResponse(raw, nil); err == nil && resp.Status == ocsp.Revoked {
					fs.log.Error("the certificate in tls.cert_file is revoked; stapling the revocation", "ocsp_server", leaf.OCSPServer[0], "revoked_at", resp.RevokedAt)
				} else {
					fs.log.Debug("OCSP response stapled", "ocsp_server", leaf.OCSPServer[0])
				}
				if at, err := revocation.RefreshTime(raw); err == nil {
					wait = time.Until(at)
				}
			}
			if wait < ocspMinWait {
				wait = ocspMinWait
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
