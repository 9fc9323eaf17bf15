package allow

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/passerelle/passerelle/internal/testutil"
)

// opensslPin computes the SPKI pin with the openssl pipeline the
// documentation gives, so that users can trust the recipe.
func opensslPin(t *testing.T, certPEM []byte) string {
	t.Helper()
	testutil.Tool(t, "openssl")
	cmd := exec.Command("sh", "-c",
		"openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64")
	cmd.Stdin = bytes.NewReader(certPEM)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}
