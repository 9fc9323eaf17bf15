package testbed

import (
	"context"
	"testing"
	"time"

	"github.com/passerelle/passerelle/secure"
)

// TestThreeClientsAgree runs the manifest through three independent clients,
// on each endpoint's own port and on the SNI port: passerelle's secure.Dial,
// openssl s_client (its verify return code, with the documented command
// line) and Python's ssl module (testdata/pyclient.py). Each must report the
// endpoint's expected status, and openssl its expected code.
func TestThreeClientsAgree(t *testing.T) {
	tb := startTestbed(t)
	eps := readManifest(t, tb.manifest)
	if len(eps) != len(plans) {
		t.Fatalf("manifest has %d endpoints, want %d", len(eps), len(plans))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	// Python runs once over the whole manifest (its start-up dominates),
	// while the Go and openssl clients run in parallel subtests.
	pyDone := make(chan map[string]pyResult, 1)
	go func() { pyDone <- runPython(ctx, t, tb.manifest) }()

	t.Run("clients", func(t *testing.T) {
		for _, ep := range eps {
			for _, via := range []struct{ name, addr string }{{"address", ep.Address}, {"sni_address", ep.SNIAddress}} {
				if via.addr == "" {
					continue // not on the SNI port (no TLS)
				}
				t.Run(ep.Name+"/"+via.name, func(t *testing.T) {
					t.Parallel()
					ctx := ctx
					if ep.ExpectedStatus == secure.StatusUnknown {
						// A client that gets no answer gives up; how soon is
						// its choice.
						var cancel context.CancelFunc
						ctx, cancel = context.WithTimeout(ctx, clientPatience)
						defer cancel()
					}
					pool := caPool(t, ep.CAFile)
					v, err := goStatus(ctx, via.addr, ep.ServerName, pool)
					if err != nil {
						t.Fatalf("secure.Dial: %v", err)
					}
					if v.Status != ep.ExpectedStatus {
						t.Errorf("secure.Dial: status %s (%s), want %s", v.Status, v.Reason, ep.ExpectedStatus)
					}
					// The stapled endpoint must be judged from its staple, the
					// other from the responder its certificate names.
					if src, ok := map[string]string{"revoked": "ocsp-staple", "revoked-no-staple": "ocsp"}[ep.Name]; ok && v.Revocation.Source != src {
						t.Errorf("secure.Dial: revocation from %q, want %q", v.Revocation.Source, src)
					}
					st, code, err := opensslStatus(ctx, t, via.addr, ep.ServerName, ep.CAFile)
					if err != nil {
						t.Fatalf("openssl: %v", err)
					}
					if want := opensslWants(ep); st != want {
						t.Errorf("openssl: status %s (code %d), want %s", st, code, want)
					}
					if code != ep.OpenSSLVerifyCode {
						t.Errorf("openssl: verify code %d, manifest says %d (%s)", code, ep.OpenSSLVerifyCode, ep.OpenSSLVerifyText)
					}
				})
			}
		}
	})

	py := <-pyDone
	for _, ep := range eps {
		for _, via := range []string{"address", "sni_address"} {
			if via == "sni_address" && ep.SNIAddress == "" {
				continue
			}
			r, ok := py[ep.Name+"/"+via]
			switch {
			case !ok:
				t.Errorf("python: no verdict for %s via %s", ep.Name, via)
			case r.Status != opensslWants(ep):
				t.Errorf("python: %s via %s: status %s (code %d: %s), want %s", ep.Name, via, r.Status, r.VerifyCode, r.Detail, opensslWants(ep))
			case r.VerifyCode != ep.OpenSSLVerifyCode:
				t.Errorf("python: %s via %s: verify code %d, manifest says %d", ep.Name, via, r.VerifyCode, ep.OpenSSLVerifyCode)
			}
		}
	}
}

// TestExpectedStatusesCovered checks that the endpoints cover all nine
// statuses.
func TestExpectedStatusesCovered(t *testing.T) {
	seen := map[secure.Status]bool{}
	for _, p := range plans {
		seen[p.status] = true
	}
	for _, s := range secure.Statuses {
		if !seen[s] {
			t.Errorf("no endpoint expects %s", s)
		}
	}
}

// opensslWants is the status a client built on OpenSSL reports for ep, as
// the manifest records it (Python's ssl module is OpenSSL too).
func opensslWants(ep Endpoint) secure.Status { return ep.OpenSSLStatus }
