package main

import (
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/secure"
)

// clientRoots is the trust of passerelle's own clients (chat, get): the
// system roots, the local CA of the data folder when there is one, and
// caFile. check differs on purpose: with --ca it trusts that file alone.
func clientRoots(dataDir, caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	ca, err := certs.LoadCA(certs.CADir(dataDir))
	switch {
	case err == nil:
		pool.AddCert(ca.Certificate())
	case errors.Is(err, certs.ErrNoCA):
		// No local CA yet: the system roots and caFile may be enough.
	default:
		return nil, fmt.Errorf("local CA: %w", err)
	}
	if caFile != "" {
		return certs.AddCAFile(pool, "--ca", caFile)
	}
	return pool, nil
}

// handshakeFailure is what chat and get say when the server's certificate
// was not accepted: the status once, the reason, and for a certificate
// from a CA this client does not know, how to make it known.
func handshakeFailure(addr string, he *secure.HandshakeError) error {
	v := he.Verdict
	if v.Status == secure.StatusTrusted || v.Status == secure.StatusUnknown || v.Reason == "" {
		return fmt.Errorf("connect to %s: certificate status %s: %w", addr, v.Status, he)
	}
	msg := fmt.Sprintf("connect to %s: certificate status %s: %s", addr, v.Status, v.Reason)
	if v.Status == secure.StatusUntrustedSigners {
		msg += "; trust the server's CA with --ca FILE or, for a passerelle on this machine, --data-dir DIR (the data folder serve printed)"
	}
	return errors.New(msg)
}
