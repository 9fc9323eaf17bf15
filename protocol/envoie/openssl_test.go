package envoie

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

// TestOpenSSLClient fetches a sample through openssl s_client, a TLS stack
// that is not Go's, speaking the seed's request.
func TestOpenSSLClient(t *testing.T) {
	openssl := testutil.Tool(t, "openssl")
	ts := startServer(t, Samples(), func(s *Server) { s.IdleTimeout = 300 * time.Millisecond })
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	must(t, os.WriteFile(caFile, testpki.CertPEM(ts.caCert), 0o644))
	cmd := exec.Command(openssl, "s_client", "-connect", ts.addr, "-servername", "localhost",
		"-CAfile", caFile, "-verify_return_error", "-quiet", "-ign_eof")
	cmd.Stdin = strings.NewReader("ENVOIE:blason.png\r\n")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("openssl s_client: %v\n%s", err, errOut.String())
	}
	want, _ := samples.ReadFile("samples/blason.png")
	got := out.Bytes()
	if len(got) < 4 || binary.BigEndian.Uint32(got) != uint32(len(want)) || !bytes.Equal(got[4:], want) {
		t.Fatalf("got %d bytes from openssl, want the 4-byte length %d and the PNG", len(got), len(want))
	}
}
