//go:build linux || freebsd

package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// debianCertsDir is where update-ca-certificates links every anchor as
// <name>.pem, beside the hash links openssl looks them up by.
const debianCertsDir = "/etc/ssl/certs"

// removeStaleSystemLinks removes the links update-ca-certificates leaves
// behind when an anchor file of /usr/local/share/ca-certificates is deleted
// (it only cleans up after a change it noticed itself): <entry>.pem, now
// pointing nowhere, and the hash links pointing at it. It reports whether it
// removed anything. Without the right to (not root), it leaves them: links
// to nothing trust nothing, and the next update-ca-certificates that
// changes something removes them.
func removeStaleSystemLinks(entry string) (bool, error) {
	name := strings.ReplaceAll(entry, " ", "_") + ".pem"
	link := filepath.Join(debianCertsDir, name)
	fi, err := os.Lstat(link)
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		return false, nil
	}
	if _, err := os.Stat(link); err == nil {
		return false, nil // still points at an anchor: not stale
	}
	des, err := os.ReadDir(debianCertsDir)
	if err != nil {
		return false, fmt.Errorf("remove stale links: %w", err)
	}
	for _, de := range des {
		if de.Type()&os.ModeSymlink == 0 {
			continue
		}
		p := filepath.Join(debianCertsDir, de.Name())
		if target, err := os.Readlink(p); err == nil && (target == name || target == link) {
			if err := os.Remove(p); errors.Is(err, fs.ErrPermission) {
				return false, nil
			} else if err != nil {
				return false, fmt.Errorf("remove stale links: %w", err)
			}
		}
	}
	if err := os.Remove(link); errors.Is(err, fs.ErrPermission) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("remove stale links: %w", err)
	}
	return true, nil
}
