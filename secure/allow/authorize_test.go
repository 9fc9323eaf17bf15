package allow

import (
	"bufio"
	"context"
	"crypto/tls"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/secure"
)

// mtlsServer runs a secure.Server on loopback that greets every admitted
// client with "hello <peer status>\n".
func mtlsServer(t *testing.T, root *testpki.CA, auth secure.ClientAuth, list List) (addr string, log *testutil.Buffer) {
	t.Helper()
	serverCert := root.Leaf(t, testpki.LeafOptions{}).TLS()
	logger, log := testutil.Logger(t, slog.LevelInfo)
	srv := &secure.Server{
		Config: secure.ServerConfig{
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &serverCert, nil },
			ClientAuth:     auth,
			ClientCAs:      root.Pool(),
			Authorize:      Authorize(list),
			Revocation:     secure.RevocationOff,
			Logger:         logger,
		},
		Handler: func(_ context.Context, c *secure.Conn) {
			_, _ = c.Write([]byte("hello " + string(c.PeerStatus()) + "\n"))
		},
	}
	ln := testutil.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String(), log
}

// greet connects with cert (nil: none) and returns the server's greeting, or
// the error that stopped the exchange (TLS 1.3 clients learn of a refused
// certificate on their first read). It uses crypto/tls directly, with
// GetClientCertificate, so that a certificate from a root the server does
// not name is still sent (with Certificates, Go sends only one matching the
// server's acceptable CAs).
func greet(t *testing.T, addr string, root *testpki.CA, cert *testpki.Leaf) (string, error) {
	t.Helper()
	cfg := &tls.Config{
		ServerName: "localhost",
		RootCAs:    root.Pool(),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			c := cert.TLS()
			return &c, nil
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestAuthorizeOverMutualTLS(t *testing.T) {
	root := testpki.NewRoot(t, testpki.CAOptions{})
	stranger := testpki.NewRoot(t, testpki.CAOptions{CommonName: "someone else's root"})
	spiffe := func(s string) []*url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return []*url.URL{u}
	}
	bob := root.Leaf(t, testpki.LeafOptions{Client: true, CommonName: "bob",
		DNSNames: []string{"bob.clients.example.com"}, URIs: spiffe("spiffe://example.org/ns/prod/sa/bob")})
	eve := root.Leaf(t, testpki.LeafOptions{Client: true, CommonName: "eve",
		DNSNames: []string{"eve.guests.example.net"}, URIs: spiffe("spiffe://example.org/ns/dev/sa/eve")})
	// Same names as bob, but from a root the server does not trust.
	fakeBob := stranger.Leaf(t, testpki.LeafOptions{Client: true, CommonName: "bob"})

	tests := []struct {
		name     string
		auth     secure.ClientAuth
		list     List
		client   *testpki.Leaf
		wantLine string // greeting when admitted
		wantLog  string // refusal reason in the server log when refused
	}{
		{"CN allowed", secure.ClientAuthRequire, List{CommonNames: []string{"bob"}}, bob, "hello trusted", ""},
		{"CN refused", secure.ClientAuthRequire, List{CommonNames: []string{"bob"}}, eve, "",
			`client certificate CN \"eve\" not in allow-list`},
		{"DNS allowed", secure.ClientAuthRequire, List{DNSNames: []string{"*.clients.example.com"}}, bob, "hello trusted", ""},
		{"DNS refused", secure.ClientAuthRequire, List{DNSNames: []string{"*.clients.example.com"}}, eve, "",
			`client certificate DNS names [\"eve.guests.example.net\"] not in allow-list`},
		{"URI allowed", secure.ClientAuthRequire, List{URIs: []string{"spiffe://example.org/ns/prod/**"}}, bob, "hello trusted", ""},
		{"URI refused", secure.ClientAuthRequire, List{URIs: []string{"spiffe://example.org/ns/prod/**"}}, eve, "",
			`client certificate URIs [\"spiffe://example.org/ns/dev/sa/eve\"] not in allow-list`},
		{"pin allowed", secure.ClientAuthRequire, List{SPKIPins: []string{certs.SPKIPin(bob.Cert)}}, bob, "hello trusted", ""},
		{"pin refused", secure.ClientAuthRequire, List{SPKIPins: []string{certs.SPKIPin(bob.Cert)}}, eve, "",
			`client certificate SPKI pin \"` + certs.SPKIPin(eve.Cert) + `\" not in allow-list`},
		{"empty list admits all", secure.ClientAuthRequire, List{}, eve, "hello trusted", ""},
		{"pin admits an untrusted certificate", secure.ClientAuthRequest, List{SPKIPins: []string{certs.SPKIPin(fakeBob.Cert)}}, fakeBob,
			"hello untrustedSigners", ""},
		{"names of an untrusted certificate not believed", secure.ClientAuthRequest, List{CommonNames: []string{"bob"}}, fakeBob, "",
			`client certificate is \"untrustedSigners\"`},
		{"no certificate", secure.ClientAuthRequest, List{CommonNames: []string{"bob"}}, nil, "",
			"no client certificate presented"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, log := mtlsServer(t, root, tt.auth, tt.list)
			line, err := greet(t, addr, root, tt.client)
			if tt.wantLog == "" {
				if err != nil || line != tt.wantLine {
					t.Fatalf("got %q, %v; want %q\nserver log:\n%s", line, err, tt.wantLine, log.String())
				}
				return
			}
			if err == nil {
				t.Fatalf("admitted with greeting %q, want a refusal", line)
			}
			testutil.EventuallyContains(t, log, `reason="not authorized: `+tt.wantLog, 5*time.Second)
		})
	}
}
