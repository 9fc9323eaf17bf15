package certs

import (
	"crypto/x509"
	"fmt"
	"os"
)

// AddCAFile adds the certificates of the PEM file file to pool and returns
// pool (a nil pool starts an empty one). It is passerelle's one way to read
// a CA file into a pool: --ca of the clients, tls.client_ca_file,
// acme.ca_root, cluster.tls.ca_file. key names the setting the file came
// from, so that each error says where to look:
//
//	--ca: open ca.pem: no such file or directory
//	tls.client_ca_file ca.pem: no PEM certificate found
//	acme.ca_root ca.pem: parse certificate 2: x509: ...
//
// Unlike x509.CertPool.AppendCertsFromPEM, a block that does not parse is
// an error, not skipped: a trust anchor silently missing would show up
// later as a peer refused for no visible reason.
func AddCAFile(pool *x509.CertPool, key, file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	found, err := ParseCertsPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", key, file, err)
	}
	if pool == nil {
		pool = x509.NewCertPool()
	}
	for _, c := range found {
		pool.AddCert(c)
	}
	return pool, nil
}
