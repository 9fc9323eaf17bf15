package testbed

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/secure"
)

// running is a testbed serving for the duration of a test.
type running struct {
	*Testbed
	dir      string // Config.Dir
	manifest string // manifest file
	logs     *testutil.Buffer
}

// startTestbed runs a testbed on ephemeral loopback ports until the test
// ends, and writes its manifest.
func startTestbed(tb testing.TB) *running {
	tb.Helper()
	tmp := tb.TempDir()
	dir := filepath.Join(tmp, "testbed")
	logs := &testutil.Buffer{}
	t, err := New(Config{Dir: dir, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	manifest := filepath.Join(tmp, "manifest.json")
	if err := t.WriteManifest(manifest); err != nil {
		tb.Fatalf("WriteManifest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- t.Serve(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if !serveReturned(tb, done) {
			tb.Errorf("Serve did not return 10s after cancellation")
		}
	})
	return &running{Testbed: t, dir: dir, manifest: manifest, logs: logs}
}

// serveReturned waits up to 10s for Serve's result on done and reports an
// error it returned; it is false when Serve has not returned by then.
func serveReturned(tb testing.TB, done <-chan error) bool {
	tb.Helper()
	select {
	case err := <-done:
		if err != nil {
			tb.Errorf("Serve: %v", err)
		}
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

// readManifest loads a manifest file the way a script would.
func readManifest(tb testing.TB, path string) []Endpoint {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var eps []Endpoint
	if err := json.Unmarshal(data, &eps); err != nil {
		tb.Fatalf("manifest %s: %v", path, err)
	}
	return eps
}

func caPool(tb testing.TB, caFile string) *x509.CertPool {
	tb.Helper()
	p, err := certs.AddCAFile(nil, "testbed root", caFile)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// goStatus is passerelle's own client: secure.Dial, revocation soft-fail,
// AIA fetching on (the defaults).
func goStatus(ctx context.Context, addr, serverName string, roots *x509.CertPool) (secure.Verdict, error) {
	c, err := secure.Dial(ctx, addr, secure.ClientConfig{ServerName: serverName, RootCAs: roots})
	if err != nil {
		var he *secure.HandshakeError
		if errors.As(err, &he) {
			return he.Verdict, nil
		}
		return secure.Verdict{}, err
	}
	defer c.Close()
	return c.Verdict(), nil
}

// opensslStatusOf maps OpenSSL X509_V_* verify codes to the vocabulary. It
// is written independently of the Python table on purpose; both follow
// docs/testbed.md.
var opensslStatusOf = map[int]secure.Status{
	0:  secure.StatusTrusted,
	9:  secure.StatusNotYetValid,
	10: secure.StatusExpired,
	2:  secure.StatusUntrustedSigners,
	18: secure.StatusUntrustedSigners,
	19: secure.StatusUntrustedSigners,
	20: secure.StatusUntrustedSigners,
	21: secure.StatusUntrustedSigners,
	27: secure.StatusUntrustedSigners,
	23: secure.StatusRevoked,
	62: secure.StatusPrincipalMismatch,
	64: secure.StatusPrincipalMismatch,
	7:  secure.StatusInvalidChain,
	24: secure.StatusInvalidChain,
	25: secure.StatusInvalidChain,
	32: secure.StatusInvalidChain,
	47: secure.StatusInvalidChain,
	48: secure.StatusInvalidChain,
	79: secure.StatusInvalidChain,
	26: secure.StatusInvalid,
	34: secure.StatusInvalid,
}

var verifyCodeRE = regexp.MustCompile(`Verify return code: (\d+) \(([^)]*)\)`)

// sClient runs openssl s_client as documented for the manifest and returns
// the verify code, the text, and the whole output.
func sClient(ctx context.Context, addr, serverName, caFile string, extra ...string) (int, string, string, error) {
	// An address is verified as one and sent no SNI (RFC 6066 section 3).
	name := []string{"-servername", serverName, "-verify_hostname", serverName}
	if net.ParseIP(serverName) != nil {
		name = []string{"-verify_ip", serverName}
	}
	args := append(append(append([]string{"s_client", "-connect", addr}, name...),
		"-CAfile", caFile, "-verify_return_error", "-crl_check", "-crl_download"), extra...)
	cmd := exec.CommandContext(ctx, "openssl", args...)
	cmd.Stdin = strings.NewReader("")
	out, _ := cmd.CombinedOutput() // exits 1 on a verify error: the code is in the output
	m := verifyCodeRE.FindSubmatch(out)
	if m == nil {
		return -1, "", string(out), errors.New("openssl printed no verify return code")
	}
	code, _ := strconv.Atoi(string(m[1]))
	return code, string(m[2]), string(out), nil
}

// opensslStatus is the openssl client: the verify code mapped to a status,
// with the AIA step browsers take for "unable to get local issuer
// certificate": fetch the issuer the leaf names and verify again; success
// means the server did not send an intermediate (invalidChain).
//
// Without a handshake there is no verify code (-1): a server that never
// answers leaves the status unknown, one that answers in clear text fails
// the handshake, which is invalid (OpenSSL then prints code 0 with cipher
// NONE).
func opensslStatus(ctx context.Context, tb testing.TB, addr, serverName, caFile string) (secure.Status, int, error) {
	code, _, out, err := sClient(ctx, addr, serverName, caFile)
	switch {
	case err != nil && ctx.Err() != nil:
		return secure.StatusUnknown, -1, nil
	case err != nil:
		return secure.StatusUnknown, code, err
	case strings.Contains(out, "Cipher is (NONE)"):
		return secure.StatusInvalid, -1, nil
	}
	if code == 20 {
		if url := opensslAIAIssuer(ctx, tb, addr, serverName); url != "" {
			bundle := filepath.Join(tb.TempDir(), "with-aia-issuer.pem")
			ca, err := os.ReadFile(caFile)
			if err != nil {
				return secure.StatusUnknown, code, err
			}
			issuer, err := httpGetPEM(ctx, url)
			if err != nil {
				return secure.StatusUnknown, code, err
			}
			if err := os.WriteFile(bundle, append(ca, issuer...), 0o600); err != nil {
				return secure.StatusUnknown, code, err
			}
			code2, _, _, err := sClient(ctx, addr, serverName, bundle)
			if err != nil {
				return secure.StatusUnknown, code, err
			}
			if code2 == 0 {
				return secure.StatusInvalidChain, code, nil
			}
			code = code2
		}
	}
	st, ok := opensslStatusOf[code]
	if !ok {
		st = secure.StatusInvalid
	}
	return st, code, nil
}

var caIssuersRE = regexp.MustCompile(`CA Issuers - URI:(\S+)`)

// opensslAIAIssuer reads the leaf's AIA caIssuers URL with openssl itself:
// s_client without verification, then openssl x509 -ext.
func opensslAIAIssuer(ctx context.Context, tb testing.TB, addr, serverName string) string {
	cmd := exec.CommandContext(ctx, "openssl", "s_client", "-connect", addr, "-servername", serverName)
	cmd.Stdin = strings.NewReader("")
	out, _ := cmd.CombinedOutput()
	block, _ := pem.Decode(out[bytes.Index(out, []byte("-----BEGIN CERTIFICATE-----")):])
	if block == nil {
		tb.Logf("openssl s_client printed no certificate:\n%s", out)
		return ""
	}
	x := exec.CommandContext(ctx, "openssl", "x509", "-noout", "-ext", "authorityInfoAccess")
	x.Stdin = bytes.NewReader(pem.EncodeToMemory(block))
	ext, err := x.CombinedOutput()
	if err != nil {
		return ""
	}
	if m := caIssuersRE.FindSubmatch(ext); m != nil {
		return string(m[1])
	}
	return ""
}

// httpGetPEM fetches a DER certificate and converts it with openssl.
func httpGetPEM(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	der, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "openssl", "x509", "-inform", "DER", "-outform", "PEM")
	cmd.Stdin = bytes.NewReader(der)
	return cmd.Output()
}

// clientPatience is how long the clients wait for a server that never
// answers (the silent endpoint).
const clientPatience = 2 * time.Second

// pyResult is one line of testdata/pyclient.py.
type pyResult struct {
	Name       string        `json:"name"`
	Via        string        `json:"via"`
	Status     secure.Status `json:"status"`
	VerifyCode int           `json:"verify_code"`
	Detail     string        `json:"detail"`
}

// runPython runs the Python client over the whole manifest and returns its
// verdicts keyed by name + "/" + via.
func runPython(ctx context.Context, tb testing.TB, manifest string) map[string]pyResult {
	tb.Helper()
	cmd := exec.CommandContext(ctx, "python3", filepath.Join("testdata", "pyclient.py"), manifest)
	cmd.Env = append(os.Environ(), "PYCLIENT_TIMEOUT="+strconv.Itoa(int(clientPatience/time.Second)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("pyclient.py: %v\n%s", err, stderr.String())
	}
	res := make(map[string]pyResult)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r pyResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			tb.Fatalf("pyclient.py line %q: %v", sc.Text(), err)
		}
		res[r.Name+"/"+r.Via] = r
	}
	return res
}

// caCertificate is the testbed root.
func (t *Testbed) caCertificate() *x509.Certificate { return t.root.cert }
