package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"

	"github.com/passerelle/passerelle/certs/revocation"
)

// OCSP stapling for files-mode certificates (certmagic staples its own
// managed certificates). When the leaf names an OCSP responder and the file
// carries the issuer, a revocation.Stapler fetches the response in the
// background (verifying it), refreshes it halfway through its validity,
// retries a failed fetch with back-off, and getCertificate serves it
// stapled (RFC 6066 section 8), so clients that check revocation need not
// ask the responder themselves. A failure only leaves the certificate
// unstapled; a staple past its nextUpdate is no longer served.

// stapleFile starts keeping an OCSP staple on c for as long as c is the
// certificate fs serves, and forgets the stapler of the previous one.
// Callers hold fs.mu (or own fs exclusively), and have cancelled the
// previous stapler's context (fs.ocspCancel).
func (m *Manager) stapleFile(fs *fileSource, c *tls.Certificate) {
	fs.stapler.Store(nil)
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
		return // read checked the whole chain already
	}
	s, err := revocation.NewStapler(revocation.StaplerConfig{Leaf: leaf, Issuer: issuer, Logger: fs.log})
	if err != nil {
		fs.log.Debug("no OCSP staple", "error", err.Error())
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	fs.ocspCancel = cancel
	fs.stapler.Store(s)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		_ = s.Run(ctx) // returns nil when ctx ends
	}()
}
