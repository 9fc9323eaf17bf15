package testbed

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/protocol/xmlsocket"
	"github.com/passerelle/passerelle/secure"
)

// clientEndpoints returns the manifest entries that judge client certificates.
func clientEndpoints(tb testing.TB, eps []Endpoint) []Endpoint {
	var out []Endpoint
	for _, e := range eps {
		if e.ClientCert {
			out = append(out, e)
		}
	}
	if len(out) != 2 {
		tb.Fatalf("manifest has %d client-certificate endpoints, want 2", len(out))
	}
	return out
}

// p12Certificate loads a PKCS#12 file as a client would.
func p12Certificate(tb testing.TB, path, password string) tls.Certificate {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	key, leaf, chain, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		tb.Fatalf("decode %s: %v", path, err)
	}
	c := tls.Certificate{PrivateKey: key.(crypto.Signer), Leaf: leaf, Certificate: [][]byte{leaf.Raw}}
	for _, ic := range chain {
		c.Certificate = append(c.Certificate, ic.Raw)
	}
	return c
}

// readVerdict reads the first XMLSocket frame and parses it.
func readVerdict(tb testing.TB, r *xmlsocket.Reader) ClientVerdict {
	tb.Helper()
	frame, err := r.ReadFrame()
	if err != nil {
		tb.Fatalf("read verdict: %v", err)
	}
	v, err := ParseVerdict(frame)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// TestClientCertificateVerdicts issues the client certificates while the
// testbed runs (so the revoked one must be picked up live), then presents
// each to both client-certificate endpoints, on their own port and by SNI,
// from the PKCS#12 files (modern and legacy) with secure.Dial, and from the
// PEM files with openssl s_client and Python. The verdict frame must name the status
// the certificate was issued for, and the echo must follow.
func TestClientCertificateVerdicts(t *testing.T) {
	tb := startTestbed(t)
	eps := clientEndpoints(t, readManifest(t, tb.manifest))
	out := filepath.Join(t.TempDir(), "client-certs")
	certs, err := IssueClientCerts(ClientCertsConfig{Dir: tb.dir, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 8 {
		t.Fatalf("issued %d client certificates, want 8", len(certs))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	pool := caPool(t, filepath.Join(out, "ca.crt"))

	// The parallel subtests run inside this group, so ctx outlives them.
	t.Run("clients", func(t *testing.T) {
		// Python starts slowly: one process per endpoint covers every
		// certificate.
		for _, ep := range eps {
			t.Run("python/"+ep.Name, func(t *testing.T) {
				t.Parallel()
				args := []string{filepath.Join("testdata", "pyclient.py"), "--verdict", ep.SNIAddress, ep.ServerName, filepath.Join(out, "ca.crt")}
				want := map[string]secure.Status{}
				for _, cc := range certs {
					args = append(args, cc.CertFile, cc.KeyFile)
					want[cc.CertFile] = cc.Status
				}
				outp, err := exec.CommandContext(ctx, "python3", args...).Output()
				if err != nil {
					t.Fatalf("pyclient.py --verdict: %v\n%s", err, outp)
				}
				sc := bufio.NewScanner(bytes.NewReader(outp))
				for sc.Scan() {
					var res struct{ Cert, Frame string }
					if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
						t.Fatalf("pyclient.py --verdict: %q: %v", sc.Text(), err)
					}
					v, err := ParseVerdict([]byte(res.Frame))
					if err != nil {
						t.Fatal(err)
					}
					if v.Status != want[res.Cert] || v.Endpoint != ep.Name {
						t.Errorf("python client with %s got %+v, want status %s", res.Cert, v, want[res.Cert])
					}
					delete(want, res.Cert)
				}
				if len(want) != 0 {
					t.Errorf("python client gave no verdict for %v", want)
				}
			})
		}
		for _, cc := range certs {
			for _, ep := range eps {
				for _, via := range []struct{ name, addr, p12 string }{
					{"address", ep.Address, cc.P12File},
					{"sni_address", ep.SNIAddress, cc.LegacyP12File},
				} {
					t.Run(string(cc.Status)+"/"+ep.Name+"/"+via.name, func(t *testing.T) {
						t.Parallel()
						cert := p12Certificate(t, via.p12, DefaultP12Password)
						c, err := secure.Dial(ctx, via.addr, secure.ClientConfig{ServerName: ep.ServerName, RootCAs: pool, Certificates: []tls.Certificate{cert}})
						if err != nil {
							t.Fatalf("dial: %v", err)
						}
						defer c.Close()
						r := xmlsocket.NewReader(c, maxFrame)
						v := readVerdict(t, r)
						if v.Status != cc.Status || v.Endpoint != ep.Name || !strings.Contains(v.Subject, "CN="+cc.CommonName) {
							t.Errorf("verdict %+v, want status %s from %s for CN=%s", v, cc.Status, ep.Name, cc.CommonName)
						}
						if v.Reason == "" {
							t.Errorf("verdict %+v has no reason", v)
						}
						if err := xmlsocket.WriteFrame(c, []byte("<ping/>")); err != nil {
							t.Fatal(err)
						}
						echo, err := r.ReadFrame()
						if err != nil || string(echo) != "Echo -- <ping/>\x00" {
							t.Errorf("echo = %q, %v; want %q", echo, err, "Echo -- <ping/>\x00")
						}
					})
				}
				t.Run(string(cc.Status)+"/"+ep.Name+"/openssl", func(t *testing.T) {
					t.Parallel()
					frame := opensslFirstFrame(ctx, t, ep.Address, ep.ServerName, filepath.Join(out, "ca.crt"), cc.CertFile, cc.KeyFile)
					v, err := ParseVerdict(frame)
					if err != nil {
						t.Fatal(err)
					}
					if v.Status != cc.Status {
						t.Errorf("openssl client got %+v, want status %s", v, cc.Status)
					}
				})
			}
		}
	})
}

// opensslFirstFrame connects with openssl s_client and a client certificate
// and returns the first NUL-terminated message the server sends. stdin stays
// open until the message has arrived, so s_client does not hang up first.
func opensslFirstFrame(ctx context.Context, tb testing.TB, addr, serverName, caFile, certFile, keyFile string) []byte {
	tb.Helper()
	cmd := exec.CommandContext(ctx, "openssl", "s_client", "-quiet", "-no_ign_eof", "-connect", addr, "-servername", serverName,
		"-verify_hostname", serverName, "-CAfile", caFile, "-verify_return_error", "-cert", certFile, "-cert_chain", certFile, "-key", keyFile)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	frame, err := bufio.NewReader(stdout).ReadBytes(0)
	stdin.Close()
	_ = cmd.Wait()
	if err != nil {
		tb.Fatalf("openssl s_client: no message (%v):\n%s", err, stderr.String())
	}
	return frame
}

// TestClientCertificateAbsent: the request endpoint says "unknown" when no
// certificate comes; the require endpoint refuses the connection.
func TestClientCertificateAbsent(t *testing.T) {
	tb := startTestbed(t)
	eps := clientEndpoints(t, readManifest(t, tb.manifest))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pool := caPool(t, tb.CAFile())
	for _, ep := range eps {
		t.Run(ep.Name, func(t *testing.T) {
			c, err := secure.Dial(ctx, ep.Address, secure.ClientConfig{ServerName: ep.ServerName, RootCAs: pool})
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			r := xmlsocket.NewReader(c, maxFrame)
			switch ep.ClientAuth {
			case ClientAuthRequest:
				v := readVerdict(t, r)
				if v.Status != secure.StatusUnknown || v.Reason != "no client certificate presented" || v.Subject != "" {
					t.Errorf("verdict %+v, want unknown / no client certificate presented", v)
				}
			case ClientAuthRequire:
				// TLS 1.3: the client finishes first and learns of the
				// refusal from the alert on its first read.
				_, err := r.ReadFrame()
				if err == nil || !strings.Contains(err.Error(), "certificate required") {
					t.Errorf("read after a refused handshake: %v, want the certificate_required alert", err)
				}
			}
		})
	}
	t.Run("require/tls1.2", func(t *testing.T) {
		ep := eps[1]
		c, err := tls.Dial("tcp", ep.Address, &tls.Config{ServerName: ep.ServerName, RootCAs: pool, MaxVersion: tls.VersionTLS12})
		if err == nil {
			c.Close()
			t.Fatal("TLS 1.2 handshake without a client certificate succeeded")
		}
		if !strings.Contains(err.Error(), "handshake failure") {
			t.Errorf("handshake error %q, want the handshake_failure alert", err)
		}
	})
	testutil.Eventually(t, "the refusal in the log", 10*time.Second, func() bool {
		return strings.Contains(tb.logs.String(), "client didn't provide a certificate")
	})
}

// TestPKCS12FilesOpenWithOpenSSL: both files open with plain openssl (the
// legacy one is 3DES, which OpenSSL 3 reads without -legacy), each with its
// own algorithms.
func TestPKCS12FilesOpenWithOpenSSL(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	certs, err := IssueClientCerts(ClientCertsConfig{Dir: dir, Out: out, Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	cc := certs[0]
	for _, tc := range []struct {
		file, algorithm string
	}{
		{cc.P12File, "PBES2, PBKDF2, AES-256-CBC"},
		{cc.LegacyP12File, "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC"},
	} {
		args := []string{"pkcs12", "-in", tc.file, "-passin", "pass:s3cret", "-nodes", "-info"}
		outp, err := exec.Command("openssl", args...).CombinedOutput()
		if err != nil || !strings.Contains(string(outp), "CN = "+cc.CommonName) || !strings.Contains(string(outp), tc.algorithm) {
			t.Errorf("openssl %s: %v, want %q and CN = %s in\n%s", strings.Join(args, " "), err, tc.algorithm, cc.CommonName, outp)
		}
	}
	for _, f := range []string{cc.KeyFile, cc.P12File, cc.LegacyP12File} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", f, fi.Mode().Perm(), err)
		}
	}
	if _, _, _, err := pkcs12.DecodeChain(mustRead(t, cc.P12File), "wrong"); !errors.Is(err, pkcs12.ErrIncorrectPassword) {
		t.Errorf("decode with a wrong password: %v, want ErrIncorrectPassword", err)
	}
}

func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestIssueClientCertsErrors checks the messages a caller gets.
func TestIssueClientCertsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ClientCertsConfig
		want string
	}{
		{"no dir", ClientCertsConfig{Out: t.TempDir()}, "testbed: client certificates: no testbed folder (ClientCertsConfig.Dir)"},
		{"no out", ClientCertsConfig{Dir: t.TempDir()}, "testbed: client certificates: no output folder"},
		{"bad key type", ClientCertsConfig{Dir: t.TempDir(), Out: t.TempDir(), KeyType: "dsa"},
			`testbed: client certificates: key type "dsa": want ecdsa-p256 or rsa-2048`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := IssueClientCerts(tc.cfg)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
