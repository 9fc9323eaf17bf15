package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/internal/serve"
)

func newCACmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Create, show, trust and untrust the local certificate authority",
		Long: `ca manages the local certificate authority of the data folder
(<data_dir>/ca/ca.pem and ca-key.pem): the root that signs the certificates
passerelle serves when no ACME CA is configured, and those "cert issue" makes.

Clients trust passerelle's certificates by trusting this root: either point
them at the file ("passerelle ca path"), or install it in the machine's trust
stores with "passerelle ca install" (the system store, Firefox/NSS and Java
where present) and take it out again with "passerelle ca uninstall".`,
		Example: `  passerelle ca create
  passerelle ca show
  openssl s_client -connect localhost:10000 -CAfile "$(passerelle ca path)"
  sudo passerelle ca install
  passerelle ca uninstall --store java`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newCACreateCmd(a), newCAShowCmd(a), newCAPathCmd(a),
		newCAInstallCmd(a, true), newCAInstallCmd(a, false))
	return cmd
}

// caDir is the folder of the local CA in the configured data folder.
func (a *app) caDir() string { return certs.CADir(a.dataDir()) }

// loadCA loads the local CA, turning "none yet" into the advice to make one.
func (a *app) loadCA() (*certs.CA, error) {
	ca, err := certs.LoadCA(a.caDir())
	if err != nil {
		return nil, fmt.Errorf("local CA: %w", err)
	}
	return ca, nil
}

func newCACreateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "create",
		Short: "Create the local CA if there is none yet",
		Long: `create makes the local CA (an ECDSA P-256 root valid ten years) in
<data_dir>/ca unless one is already there, and says which happened. An
existing CA is never replaced: clients may already trust it.`,
		Example: `  passerelle ca create
  passerelle --data-dir /srv/passerelle ca create`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ca, created, err := certs.LoadOrCreateCA(a.caDir())
			if err != nil {
				return fmt.Errorf("local CA: %w", err)
			}
			verb := "Local CA already exists"
			if created {
				verb = "Created the local CA"
			}
			_, err = fmt.Fprintf(a.out, "%s: %s\n  certificate: %s\n  key:         %s\nTrust it with \"passerelle%s ca install\", or give clients %s.\n",
				verb, ca.Certificate().Subject.CommonName, ca.CertFile(), ca.KeyFile(), serve.DataDirFlag(a.dataDir()), ca.CertFile())
			return err
		},
	}
}

// caShowJSON is the --json form of "ca show"; field names are an interface.
type caShowJSON struct {
	CertFile    string         `json:"cert_file"`
	KeyFile     string         `json:"key_file"`
	TrustName   string         `json:"trust_name"`
	Certificate certs.CertInfo `json:"certificate"`
}

func newCAShowCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print a summary of the local CA and where its files are",
		Long: `show prints where the local CA's certificate and private key are, the name
it has in the trust stores ("passerelle ca install"), and a summary of the
certificate as "passerelle cert inspect" gives it: subject, validity, key,
constraints, SHA-256 fingerprint and SPKI pin. With --json it prints one
object (cert_file, key_file, trust_name, certificate) for scripts. When there
is no CA yet it says how to make one and exits with status 1.`,
		Example: `  passerelle ca show
  passerelle ca show --json | jq -r .certificate.sha256_fingerprint`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ca, err := a.loadCA()
			if err != nil {
				return err
			}
			info := certs.Describe(ca.Certificate(), time.Now())
			name := certs.TrustEntryName(certs.TrustName(a.dataDir()), ca.Certificate())
			if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
				return writeIndentedJSON(a.out, caShowJSON{CertFile: ca.CertFile(), KeyFile: ca.KeyFile(), TrustName: name, Certificate: info})
			}
			fmt.Fprintf(a.out, "Local CA %s\n  %-15s %s\n  %-15s %s\n  %-15s %s\n",
				ca.Certificate().Subject.CommonName,
				"Certificate:", ca.CertFile(), "Private key:", ca.KeyFile(), "Trust name:", name)
			return info.WriteText(a.out, "  ")
		},
	}
	cmd.Flags().Bool("json", false, "print one JSON object instead of text")
	return cmd
}

func newCAPathCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "path",
		Short: "Print the path of the local CA certificate (PEM), nothing else",
		Long: `path prints the path of the local CA certificate file and nothing else, for
scripts. When there is no CA yet it prints nothing on standard output, says
so on standard error and exits with status 1.`,
		Example: `  curl --cacert "$(passerelle ca path)" https://localhost:8443/
  openssl s_client -connect localhost:10000 -CAfile "$(passerelle ca path)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ca, err := a.loadCA()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(a.out, ca.CertFile())
			return err
		},
	}
}

// caUninstallLong is ca uninstall --help's description.
const caUninstallLong = `uninstall removes the local CA certificate from the trust stores "ca install"
put it in (see "passerelle ca install --help"), printing one line per store:
removed, not installed, or skipped and why. The CA files themselves stay.

On Debian, update-ca-certificates also copied the CA into Java's
/etc/ssl/certs/java/cacerts as "debian:<name>.pem" and does not take it out
again: uninstall deletes that alias with keytool (system and java stores),
or, with no keytool, reports the store failed with the command to run.
Exits with status 1 when a store failed.`

// caInstallLong is ca install --help's description.
const caInstallLong = `install adds the local CA certificate (creating the CA first if there is
none) to the machine's trust stores, so that browsers, openssl, curl, Go,
Java and AIR applications trust the certificates passerelle issues:

  system  the operating system store (Debian: /usr/local/share/ca-certificates
          then update-ca-certificates; needs root, or sudo)
  nss     every Firefox profile and ~/.pki/nssdb (Chromium), through certutil;
          on Linux the latter is created (empty password, as Chromium
          does) when a fresh account has none
  java    $JAVA_HOME/lib/security/cacerts, through keytool

It prints one line per store: installed, already installed, or skipped and
why (certutil missing, JAVA_HOME not set, not root). The
CA is named after the data folder and its serial number, so CAs of several
data folders can be installed side by side and removed one by one. Exits with
status 1 when a store failed or when no store could take the CA.`

func newCAInstallCmd(a *app, install bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install the local CA into the system, Firefox/NSS and Java trust stores",
		Long:  caInstallLong,
		Example: `  sudo passerelle ca install
  passerelle ca install --store nss --store java
  JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 passerelle ca install`,
		Args: cobra.NoArgs,
	}
	if !install {
		cmd.Use = "uninstall"
		cmd.Short = "Remove the local CA from the system, Firefox/NSS and Java trust stores"
		cmd.Long = caUninstallLong
		cmd.Example = `  sudo passerelle ca uninstall
  passerelle ca uninstall --store java`
	}
	cmd.Flags().StringSlice("store", nil, "trust store to use: system, nss or java (repeat or comma-separate; default all)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		stores, _ := cmd.Flags().GetStringSlice("store")
		return a.runTrust(stores, install)
	}
	return cmd
}

// runTrust installs the local CA into the trust stores (creating it first
// if there is none), or removes it, and says what happened in each store.
func (a *app) runTrust(stores []string, install bool) error {
	var (
		ca  *certs.CA
		err error
	)
	if install {
		var created bool
		ca, created, err = certs.LoadOrCreateCA(a.caDir())
		if err != nil {
			return fmt.Errorf("local CA: %w", err)
		}
		if created {
			fmt.Fprintf(a.out, "Created the local CA %s\n", ca.CertFile())
		}
	} else if ca, err = a.loadCA(); err != nil {
		return err
	}
	// No logger: the per-store lines below already tell the user.
	cfg := certs.TrustConfig{Name: certs.TrustName(a.dataDir()), Stores: stores}
	run := certs.UninstallTrust
	if install {
		run = certs.InstallTrust
	}
	results, err := run(a.ctx, ca.CertFile(), cfg)
	writeTrustResults(a.out, results)
	if err != nil {
		return err
	}
	if install && !anyTrusted(results) {
		return errors.New("the local CA is in no trust store: see the reasons above")
	}
	return nil
}

func writeTrustResults(w io.Writer, results []certs.TrustResult) {
	for _, r := range results {
		switch r.Outcome {
		case certs.TrustSkipped, certs.TrustFailed:
			fmt.Fprintf(w, "%-7s %s: %s\n", r.Store, r.Outcome, r.Detail)
		default:
			fmt.Fprintf(w, "%-7s %s (%s)\n", r.Store, r.Outcome, r.Detail)
		}
	}
}

func anyTrusted(results []certs.TrustResult) bool {
	for _, r := range results {
		if r.Outcome == certs.TrustInstalled || r.Outcome == certs.TrustAlreadyInstalled {
			return true
		}
	}
	return false
}

// writeIndentedJSON prints v as indented JSON followed by a newline.
func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}
