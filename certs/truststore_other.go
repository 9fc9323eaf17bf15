//go:build !linux && !freebsd

package certs

import (
	"crypto/x509"
	"runtime"
)

// systemTrustFile: on macOS and Windows the system store is not a folder of
// files, so there is no path to check; the library acts directly.
func systemTrustFile(*x509.Certificate, string) (string, bool) {
	return "", runtime.GOOS == "darwin" || runtime.GOOS == "windows"
}

// removeStaleSystemLinks: only Debian's /etc/ssl/certs has links to clean.
func removeStaleSystemLinks(string) (bool, error) { return false, nil }
