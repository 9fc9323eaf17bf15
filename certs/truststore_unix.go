//go:build linux || freebsd

package certs

import (
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/smallstep/truststore"
)

// systemTrustFile is the file the truststore library writes the CA to in the
// system store (it replaces spaces with underscores, as here), and whether
// the system has a store the library supports.
func systemTrustFile(cert *x509.Certificate, name string) (string, bool) {
	if truststore.SystemTrustFilename == "" || len(truststore.SystemTrustCommand) == 0 {
		return "", false
	}
	return fmt.Sprintf(truststore.SystemTrustFilename, strings.ReplaceAll(TrustEntryName(name, cert), " ", "_")), true
}
