package certs

import (
	"os/exec"
	"testing"
)

func lookPath(name string) (string, error) { return exec.LookPath(name) }

// runCmd runs a command and fails the test with its output when it fails.
func runCmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}
