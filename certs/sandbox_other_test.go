//go:build !linux

package certs

import "testing"

type sandboxOpts struct {
	hooks  map[string]string
	noJava bool
	home   string
}

// inTrustSandbox: private mount namespaces are Linux's; elsewhere the tests
// that change trust stores do not run.
func inTrustSandbox(t *testing.T, _ sandboxOpts) bool {
	t.Helper()
	t.Skip("trust store changes are tested on Linux only, in a private mount namespace")
	return false
}
