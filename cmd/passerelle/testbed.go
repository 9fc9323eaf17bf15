package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/testbed"
)

// testbedDir is where the testbed keeps its root and revoked client serials,
// apart from the local CA so that trusting one never means trusting the other.
func (a *app) testbedDir() string { return filepath.Join(a.dataDir(), "testbed") }

func newTestbedCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "testbed",
		Short: "Run TLS endpoints that each present one certificate defect",
		Long: `testbed starts TLS endpoints on loopback, each presenting one certificate
defect (expired, not yet valid, wrong name, untrusted signers, broken chains,
revoked, not for servers, no TLS at all, no answer) or a chain that clients
get wrong (cross-signed with an expired path, out of order, with extra
certificates, a namesake issuer, name constraints), so that a client
developer can check that each yields the right status: trusted, expired,
notYetValid, principalMismatch, untrustedSigners, invalidChain, revoked,
invalid or unknown.

Every endpoint has its own port (base-port+2 onwards, for socket clients that
cannot choose a server name) and a server name <endpoint>.testbed.localhost
on the shared SNI port (base-port+1). base-port itself is an HTTP server for
what the certificates point at: the missing intermediate (AIA), CRLs, OCSP,
and the manifest (/manifest.json); at "/" it serves a dashboard that tries
every endpoint from the visitor's browser and says where the browser accepted
what it should have refused, or the reverse. A browser (ALPN http/1.1) gets a
page naming the endpoint and its defect from every TLS endpoint; other
clients get the endpoint's service.

Two endpoints ask for a client certificate and send their verdict on it as
the first XMLSocket message, then echo; "testbed client-certs" issues a client
certificate for each status.

The testbed root is kept in <data_dir>/testbed/ca.crt (install it once in a
trust store for clients that need one); every other certificate is made
afresh at each start. Runs until interrupted.`,
		Example: `  passerelle testbed
  passerelle testbed --base-port 20400 --manifest testbed.json --ca-out testbed-ca.pem
  openssl s_client -connect 127.0.0.1:10403 -servername expired.testbed.localhost -CAfile testbed-ca.pem
  passerelle check 127.0.0.1:10401 --servername revoked.testbed.localhost --ca testbed-ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runTestbed()
		},
	}
	f := cmd.Flags()
	f.String("address", testbed.DefaultAddress, "host every listener binds")
	f.Int("base-port", testbed.DefaultBasePort, "first port: HTTP on it, SNI on +1, endpoints from +2 (0: ephemeral ports)")
	f.String("ca-out", "", "also write the testbed root (PEM) to this file")
	f.String("manifest", "", "write the endpoints as a JSON array to this file")
	f.String("key-type", string(certs.KeyECDSAP256), "key type of the certificates: ecdsa-p256 or rsa-2048")
	mustBind(a.v, "testbed.address", f.Lookup("address"))
	mustBind(a.v, "testbed.base_port", f.Lookup("base-port"))
	mustBind(a.v, "testbed.ca_out", f.Lookup("ca-out"))
	mustBind(a.v, "testbed.manifest", f.Lookup("manifest"))
	mustBind(a.v, "testbed.key_type", f.Lookup("key-type"))
	cmd.AddCommand(newTestbedClientCertsCmd(a))
	return cmd
}

func (a *app) runTestbed() error {
	tb, err := testbed.New(testbed.Config{
		Dir:      a.testbedDir(),
		Address:  a.v.GetString("testbed.address"),
		BasePort: a.v.GetInt("testbed.base_port"),
		KeyType:  certs.KeyType(a.v.GetString("testbed.key_type")),
		Logger:   a.log,
	})
	if err != nil {
		return err
	}
	if p := a.v.GetString("testbed.ca_out"); p != "" {
		if err := tb.WriteCAFile(p); err != nil {
			tb.Close()
			return err
		}
	}
	if p := a.v.GetString("testbed.manifest"); p != "" {
		if err := tb.WriteManifest(p); err != nil {
			tb.Close()
			return err
		}
	}
	fmt.Fprintf(a.out, "passerelle testbed: trust %s\n", tb.CAFile())
	fmt.Fprintf(a.out, "HTTP (AIA, CRL, OCSP, /manifest.json): http://%s   SNI port: %s (server name <endpoint>%s)\n\n",
		tb.HTTPAddress(), tb.SNIAddress(), testbed.NameSuffix)
	if err := testbed.WriteTable(a.out, tb.Endpoints()); err != nil {
		tb.Close()
		return err
	}
	fmt.Fprintln(a.out, "\nOpenSSL column: openssl s_client -connect ADDRESS -servername NAME -verify_hostname NAME -CAfile CA -verify_return_error -crl_check -crl_download (-verify_ip NAME for an address)")
	fmt.Fprintln(a.out, "Client certificates for the client-cert endpoints: passerelle testbed client-certs --out DIR")
	fmt.Fprintf(a.out, "Browsers: http://%s/ tries every endpoint from the browser and tells what it got wrong (trust the root there first)\n", tb.HTTPAddress())
	return tb.Serve(a.ctx)
}

func newTestbedClientCertsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "client-certs",
		Short: "Issue a client certificate for each status the testbed's client-certificate endpoints give",
		Long: `client-certs writes into --out one client certificate per status: trusted,
expired, notYetValid, principalMismatch, untrustedSigners, invalidChain,
revoked and invalid. Each comes as STATUS.crt (leaf then chain, PEM),
STATUS.key (PKCS#8 PEM), STATUS.p12 (modern PKCS#12: AES-256, PBKDF2-SHA-256)
and STATUS-legacy.p12 (RC2/3DES PKCS#12 for older key stores), with the
password "passerelle" unless --password is given; ca.crt is the testbed root.

They are signed by the testbed root in <data_dir>/testbed, so a testbed run
with the same data folder judges each as its status; the revoked one is
recorded there, and a running testbed picks it up at once.`,
		Example: `  passerelle testbed client-certs --out client-certs
  openssl s_client -connect 127.0.0.1:10417 -servername client-cert-request.testbed.localhost \
      -CAfile client-certs/ca.crt -cert client-certs/expired.crt -key client-certs/expired.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, _ := cmd.Flags().GetString("out")
			if out == "" {
				return errors.New("testbed client-certs: --out DIR is required")
			}
			password, _ := cmd.Flags().GetString("password")
			kt, _ := cmd.Flags().GetString("key-type")
			certs, err := testbed.IssueClientCerts(testbed.ClientCertsConfig{
				Dir:      a.testbedDir(),
				Out:      out,
				Password: password,
				KeyType:  certs.KeyType(kt),
			})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "STATUS\tCERTIFICATE\tKEY\tPKCS#12\tCOMMON NAME")
			for _, c := range certs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Status, c.CertFile, c.KeyFile, c.P12File, c.CommonName)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.out, "\nPKCS#12 password: %q (legacy RC2 copies: STATUS-legacy.p12). Root: %s\n",
				passwordOrDefault(password), filepath.Join(out, "ca.crt"))
			return err
		},
	}
	f := cmd.Flags()
	f.String("out", "", "folder to write the certificates to (required)")
	f.String("password", testbed.DefaultP12Password, "password of the PKCS#12 files")
	f.String("key-type", string(certs.KeyECDSAP256), "key type: ecdsa-p256 or rsa-2048")
	return cmd
}

func passwordOrDefault(p string) string {
	if p == "" {
		return testbed.DefaultP12Password
	}
	return p
}
