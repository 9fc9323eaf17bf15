package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/secure"
	"github.com/passerelle/passerelle/testbed"
)

// runTestbedCLI runs the command tree in-process with ctx.
func runTestbedCLI(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	cmd := newRootCmd(ctx, strings.NewReader(""), &out, &errOut)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// TestTestbedCommand starts the testbed, waits for its manifest, checks one
// endpoint with "passerelle check", then interrupts it.
func TestTestbedCommand(t *testing.T) {
	dir := t.TempDir()
	manifest, caOut := filepath.Join(dir, "manifest.json"), filepath.Join(dir, "testbed-ca.pem")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		out, errOut string
		err         error
	}
	done := make(chan result, 1)
	go func() {
		o, e, err := runTestbedCLI(ctx, "testbed", "--data-dir", filepath.Join(dir, "data"),
			"--base-port", "0", "--manifest", manifest, "--ca-out", caOut)
		done <- result{o, e, err}
	}()
	testutil.Eventually(t, "the manifest", 20*time.Second, func() bool {
		_, err := os.Stat(manifest)
		return err == nil
	})
	var eps []testbed.Endpoint
	if err := json.Unmarshal(mustReadFile(t, manifest), &eps); err != nil {
		t.Fatal(err)
	}
	var expired testbed.Endpoint
	for _, e := range eps {
		if e.CAFile != caOut {
			t.Errorf("%s: ca_file %q, want the --ca-out file %q", e.Name, e.CAFile, caOut)
		}
		if e.Name == "expired" {
			expired = e
		}
	}
	out, _, err := runTestbedCLI(context.Background(), "check", expired.Address, "--json",
		"--servername", expired.ServerName, "--ca", caOut)
	if err == nil {
		t.Error("check of the expired endpoint exited 0")
	}
	var verdict struct {
		Status string `json:"status"`
	}
	if jerr := json.Unmarshal([]byte(out), &verdict); jerr != nil || verdict.Status != "expired" {
		t.Errorf("check --json: %q (%v), want status expired", out, jerr)
	}

	// check agrees with every endpoint that judges no client certificate:
	// its status and its exit code (the silent endpoint's wait is cut short).
	for _, e := range eps {
		if e.ClientCert {
			continue
		}
		out, _, err := runTestbedCLI(context.Background(), "check", e.Address, "--json",
			"--servername", e.ServerName, "--ca", caOut, "--timeout", "1s")
		var v struct {
			Status secure.Status `json:"status"`
			Reason string        `json:"reason"`
		}
		if jerr := json.Unmarshal([]byte(out), &v); jerr != nil || v.Status != e.ExpectedStatus {
			t.Errorf("check %s: status %q (%s; %v), want %s", e.Name, v.Status, v.Reason, jerr, e.ExpectedStatus)
		}
		if got, want := exitCode(err), checkExitCodes[e.ExpectedStatus]; got != want {
			t.Errorf("check %s: exit %d, want %d", e.Name, got, want)
		}
	}

	// In the other direction: check presents an expired client certificate
	// to the endpoint that judges client certificates, and reports the
	// endpoint's verdict.
	var request testbed.Endpoint
	for _, e := range eps {
		if e.Name == "client-cert-request" {
			request = e
		}
	}
	certsDir := filepath.Join(dir, "client-certs")
	if _, _, err := runTestbedCLI(context.Background(), "testbed", "client-certs", "--data-dir", filepath.Join(dir, "data"), "--out", certsDir); err != nil {
		t.Fatal(err)
	}
	out, _, err = runTestbedCLI(context.Background(), "check", request.Address, "--json", "--servername", request.ServerName,
		"--ca", caOut, "--cert", filepath.Join(certsDir, "expired.crt"), "--key", filepath.Join(certsDir, "expired.key"))
	if err != nil {
		t.Errorf("check with a client certificate: %v\n%s", err, out)
	}
	var client struct {
		ClientCertificate string `json:"client_certificate"`
	}
	if jerr := json.Unmarshal([]byte(out), &client); jerr != nil || !strings.HasPrefix(client.ClientCertificate, "accepted; the server judged it expired: ") {
		t.Errorf("check --cert expired.crt: client_certificate %q (%v), want the endpoint's verdict, expired", client.ClientCertificate, jerr)
	}

	cancel()
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("testbed did not stop 10s after interruption")
	}
	if r.err != nil {
		t.Fatalf("testbed: %v\n%s", r.err, r.errOut)
	}
	for _, want := range []string{"passerelle testbed: trust " + caOut, "ENDPOINT", "expired.testbed.localhost",
		"10 (certificate has expired)", "client certificate: require", "status needs an AIA fetch",
		"OpenSSL 3.0 gets it wrong: invalid", "Browsers: http://127.0.0.1:"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("output lacks %q:\n%s", want, r.out)
		}
	}
	if !bytes.Equal(mustReadFile(t, caOut), mustReadFile(t, filepath.Join(dir, "data", "testbed", "ca.crt"))) {
		t.Error("--ca-out differs from the persisted root")
	}
}

func TestTestbedClientCertsCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "certs")
	stdout, _, err := runTestbedCLI(context.Background(), "testbed", "client-certs", "--data-dir", filepath.Join(dir, "data"), "--out", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"trusted", "expired", "notYetValid", "principalMismatch", "untrustedSigners", "invalidChain", "revoked", "invalid"} {
		for _, ext := range []string{".crt", ".key", ".p12", "-legacy.p12"} {
			if _, err := os.Stat(filepath.Join(out, s+ext)); err != nil {
				t.Errorf("missing %s%s: %v", s, ext, err)
			}
		}
	}
	if !strings.Contains(stdout, `PKCS#12 password: "passerelle"`) {
		t.Errorf("output does not give the password:\n%s", stdout)
	}
}

func TestTestbedBadInput(t *testing.T) {
	dataDir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"testbed", "client-certs"}, "testbed client-certs: --out DIR is required"},
		{[]string{"testbed", "--base-port", "70000"}, "testbed: base port 70000: the 29 ports from it must lie within 1-65535"},
		{[]string{"testbed", "--key-type", "dsa", "--base-port", "0"}, `testbed: key type "dsa": want ecdsa-p256 or rsa-2048`},
		{[]string{"testbed", "extra"}, `unknown command "extra" for "passerelle testbed"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, _, err := runTestbedCLI(context.Background(), append(tc.args, "--data-dir", dataDir)...)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTestbedExampleConfig runs the testbed with configs/testbed.yaml, as
// its comment says, with only the paths and the port moved to the test's
// own: every key of the file is known and its values start the testbed.
func TestTestbedExampleConfig(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "manifest.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := runTestbedCLI(ctx, "--config", filepath.Join("..", "..", "configs", "testbed.yaml"),
			"--data-dir", filepath.Join(dir, "data"), "testbed", "--base-port", "0",
			"--manifest", manifest, "--ca-out", filepath.Join(dir, "testbed-ca.pem"))
		done <- err
	}()
	testutil.Eventually(t, "the manifest", 20*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("testbed with configs/testbed.yaml ended: %v", err)
		default:
		}
		_, err := os.Stat(manifest)
		return err == nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("testbed after the interrupt: %v", err)
	}
}
