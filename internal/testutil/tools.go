package testutil

import (
	"os/exec"
	"testing"
)

// Tool returns the path of an independent program the tests drive as a real
// peer (openssl, python3). Its absence fails the test rather than skipping
// it: a cross-check that silently does not run proves nothing, and .ci/run
// installs every such tool.
func Tool(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		tb.Fatalf("%s is needed by this test and is not on PATH (.ci/run installs it): %v", name, err)
	}
	return path
}
