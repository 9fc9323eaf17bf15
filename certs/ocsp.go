package certs

import "crypto/tls"

// stapleFile fetches an OCSP response for a files-mode certificate whose
// leaf names a responder. Placeholder until stapling is wired.
func (m *Manager) stapleFile(fs *fileSource, c *tls.Certificate) {}
