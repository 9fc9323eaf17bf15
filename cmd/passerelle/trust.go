package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/passerelle/passerelle/certs"
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
		return addCAFile(pool, caFile)
	}
	return pool, nil
}

// addCAFile adds the certificates of the PEM file given with --ca to pool.
func addCAFile(pool *x509.CertPool, caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca %s: no PEM certificate in the file", caFile)
	}
	return pool, nil
}
