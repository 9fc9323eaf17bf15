package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/internal/serve"
)

// p12PasswordEnv is read when --p12-password is not given, so the password need not appear in the process list.
const p12PasswordEnv = "PASSERELLE_P12_PASSWORD"

func newCertCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Issue server and client certificates from the local CA; inspect certificates",
		Long: `cert issues certificates signed by the local CA (PEM, and PKCS#12 for AIR and
OpenFL applications) and inspects certificate files or the chain a live
server presents.`,
		Example: `  passerelle cert issue chat.lan 192.168.1.20
  passerelle cert issue --client alice@example.com --p12
  passerelle cert inspect chat.lan.crt
  passerelle cert inspect localhost:10000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newCertIssueCmd(a), newCertInspectCmd(a))
	return cmd
}

// issueOptions are the flags of "cert issue", decoded once.
type issueOptions struct {
	names       []string
	commonName  string
	client      bool
	route       bool
	lifetime    time.Duration
	keyType     certs.KeyType
	outDir      string
	baseName    string
	force       bool
	p12         bool
	p12Password string
	p12Format   certs.P12Format
}

func newCertIssueCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "issue NAME...",
		Short: "Issue a server (default) or client certificate from the local CA",
		Long: `issue signs a new certificate with the local CA (created first if there is
none) and writes, in --out (default: the current folder):

  NAME.crt  the certificate (PEM)
  NAME.key  its private key (PEM, PKCS#8, mode 0600)
  NAME.p12  with --p12: key, certificate and CA in one PKCS#12 file (0600)

Each NAME is sorted into the certificate by its form: an IP address, an e-mail
address (has @), a URI (has ://, for instance a SPIFFE ID), otherwise a DNS
name (a wildcard "*.example.com" is allowed). A server certificate needs at
least one DNS name or IP address; a client certificate (--client) may have
only a common name (--cn). A cluster route certificate (--route) is both a
server and a client certificate, for the node named: routes accept it only
with both usages and a node's name (docs/cluster.md).

The file name defaults to the first name ("*" becomes "_wildcard", "+N" counts
the other names, "-client" marks client certificates). Existing files are
never overwritten without --force.

PKCS#12: the password comes from --p12-password, else from the environment
variable PASSERELLE_P12_PASSWORD. There is no silent empty password: an
unprotected file needs an explicit --p12-password "". The default format,
legacy (3DES, SHA-1 MAC), is the one AIR and OpenFL applications load on every
platform (macOS Keychain, older Windows and Java read nothing newer); modern
(AES-256, SHA-256) suits OpenSSL 1.1.1+, Java 12+ and Windows Server 2019+.`,
		Example: `  passerelle cert issue localhost 127.0.0.1 ::1
  passerelle cert issue '*.chat.lan' chat.lan --lifetime 365d --out /etc/passerelle
  passerelle cert issue --client --cn alice alice@example.com --p12 --p12-password s3cret
  PASSERELLE_P12_PASSWORD=s3cret passerelle cert issue --client spiffe://example.org/bob --p12
  passerelle cert issue --key-type rsa-2048 --name legacy-server old.lan
  passerelle cert issue --route node1.example.org --out /etc/passerelle`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := a.issueOptions(cmd, args)
			if err != nil {
				return err
			}
			return a.runIssue(o)
		},
	}
	f := cmd.Flags()
	f.Bool("client", false, "issue a client-authentication certificate instead of a server one")
	f.Bool("route", false, "issue a cluster route certificate (server and client authentication, docs/cluster.md)")
	f.String("cn", "", "subject common name (default: the first name)")
	f.String("lifetime", "90d", "validity: days (90d) or a Go duration (2160h); at most 825d")
	f.String("key-type", string(certs.KeyECDSAP256), "key type: "+keyTypeNames())
	f.StringP("out", "o", ".", "folder to write the files into (created if missing)")
	f.String("name", "", "base name of the files (default: from the first name)")
	f.Bool("force", false, "overwrite existing files")
	f.Bool("p12", false, "also write NAME.p12 (PKCS#12) with the key, certificate and CA")
	f.String("p12-password", "", "PKCS#12 password (default: $"+p12PasswordEnv+"; give \"\" explicitly for none)")
	f.String("p12-format", string(certs.P12Legacy), "PKCS#12 algorithms: legacy (3DES, what AIR loads) or modern (AES-256)")
	mustBind(a.v, "cert.lifetime", f.Lookup("lifetime"))
	mustBind(a.v, "cert.key_type", f.Lookup("key-type"))
	mustBind(a.v, "cert.p12_format", f.Lookup("p12-format"))
	return cmd
}

func keyTypeNames() string {
	var names []string
	for _, kt := range certs.KeyTypes() {
		names = append(names, string(kt))
	}
	return strings.Join(names, ", ")
}

func (a *app) issueOptions(cmd *cobra.Command, args []string) (issueOptions, error) {
	f := cmd.Flags()
	o := issueOptions{names: args}
	o.client, _ = f.GetBool("client")
	o.route, _ = f.GetBool("route")
	if o.client && o.route {
		return o, errors.New("--client and --route: choose one (a route certificate is already a client one, and a server one)")
	}
	o.commonName, _ = f.GetString("cn")
	o.outDir, _ = f.GetString("out")
	o.baseName, _ = f.GetString("name")
	o.force, _ = f.GetBool("force")
	o.p12, _ = f.GetBool("p12")
	if len(args) == 0 && (!o.client || o.commonName == "") {
		return o, errors.New("give at least one name (DNS name, IP address, e-mail or URI), or --client with --cn")
	}
	var err error
	if o.lifetime, err = parseLifetime(a.v.GetString("cert.lifetime")); err != nil {
		return o, err
	}
	if o.keyType, err = certs.ParseKeyType(a.v.GetString("cert.key_type")); err != nil {
		return o, err
	}
	if o.p12Format, err = certs.ParseP12Format(a.v.GetString("cert.p12_format")); err != nil {
		return o, err
	}
	if f.Changed("p12-password") {
		o.p12 = true // a password only makes sense for the PKCS#12 file
		o.p12Password, _ = f.GetString("p12-password")
	} else if o.p12 {
		pw, ok := os.LookupEnv(p12PasswordEnv)
		if !ok || pw == "" {
			return o, errors.New("--p12 needs a password: give --p12-password or set " + p12PasswordEnv +
				" (--p12-password \"\" for an unprotected file)")
		}
		o.p12Password = pw
	}
	if o.baseName == "" {
		o.baseName = defaultCertName(args, o.commonName, o.client)
	}
	if strings.ContainsAny(o.baseName, `/\`) || o.baseName == "." || o.baseName == ".." {
		return o, fmt.Errorf("--name %q: a file name without folder, please (use --out for the folder)", o.baseName)
	}
	return o, nil
}

// parseLifetime reads "90d" (days, as people say certificate lifetimes) or
// any Go duration ("2160h").
func parseLifetime(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("--lifetime %q: want days like 90d or a duration like 2160h", s)
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, bad
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, bad
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("--lifetime %q: must be positive", s)
	}
	if d > certs.MaxLeafLifetime {
		return 0, fmt.Errorf("--lifetime %q: over the %d-day maximum that clients accept", s, int(certs.MaxLeafLifetime/(24*time.Hour)))
	}
	return d, nil
}

// defaultCertName follows mkcert: the first name, "*" spelled "_wildcard",
// characters unsafe in file names replaced, "+N" for N more names.
func defaultCertName(names []string, cn string, client bool) string {
	first := cn
	if len(names) > 0 {
		first = names[0]
	}
	first = strings.ReplaceAll(first, "*", "_wildcard")
	first = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			r == '.', r == '-', r == '_', r == '@', r == '+':
			return r
		default:
			return '_'
		}
	}, first)
	if len(names) > 1 {
		first += "+" + strconv.Itoa(len(names)-1)
	}
	if client {
		first += "-client"
	}
	return first
}

func (a *app) runIssue(o issueOptions) error {
	certFile := filepath.Join(o.outDir, o.baseName+".crt")
	keyFile := filepath.Join(o.outDir, o.baseName+".key")
	p12File := filepath.Join(o.outDir, o.baseName+".p12")
	targets := []string{certFile, keyFile}
	if o.p12 {
		targets = append(targets, p12File)
	}
	// Refuse before making anything, so a refusal leaves no half-written set.
	if !o.force {
		if err := refuseExisting(targets); err != nil {
			return err
		}
	}

	ca, created, err := certs.LoadOrCreateCA(a.caDir())
	if err != nil {
		return fmt.Errorf("local CA: %w", err)
	}
	if created {
		fmt.Fprintf(a.out, "Created the local CA %s (trust it with \"passerelle%s ca install\")\n", ca.CertFile(), serve.DataDirFlag(a.dataDir()))
	}
	issued, err := ca.Issue(certs.IssueRequest{
		Names:      o.names,
		CommonName: o.commonName,
		Client:     o.client,
		Route:      o.route,
		Lifetime:   o.lifetime,
		KeyType:    o.keyType,
	})
	if err != nil {
		return fmt.Errorf("issue: %w", err)
	}
	keyPEM, err := issued.KeyPEM()
	if err != nil {
		return fmt.Errorf("issue: %w", err)
	}
	var p12 []byte
	if o.p12 {
		// The CA goes in too: importers (Keychain, Windows, Java) then see
		// the whole chain and can offer to trust it.
		chain := append(append([]*x509.Certificate{}, issued.Chain...), ca.Certificate())
		if p12, err = certs.EncodePKCS12(issued.Key, issued.Cert, chain, o.p12Password, o.p12Format); err != nil {
			return err
		}
	}

	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return fmt.Errorf("create output folder: %w", err)
	}
	// Key first: a certificate without its key is useless, the reverse is
	// merely incomplete.
	if err := certs.WriteFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	if err := certs.WriteFileAtomic(certFile, issued.CertPEM(), 0o644); err != nil {
		return err
	}
	if o.p12 {
		if err := certs.WriteFileAtomic(p12File, p12, 0o600); err != nil {
			return err
		}
	}

	a.printIssued(o, ca, issued, certFile, keyFile, p12File)
	return nil
}

// refuseExisting says which of the files already exists, if one does.
func refuseExisting(files []string) error {
	for _, t := range files {
		if _, err := os.Lstat(t); err == nil {
			return fmt.Errorf("%s already exists: use --force to overwrite, or --name/--out for another file", t)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("check %s: %w", t, err)
		}
	}
	return nil
}

// printIssued says what runIssue made and where it wrote it.
func (a *app) printIssued(o issueOptions, ca *certs.CA, issued *certs.Issued, certFile, keyFile, p12File string) {
	kind := "server"
	switch {
	case o.client:
		kind = "client"
	case o.route:
		kind = "cluster route (server and client)"
	}
	info := certs.Describe(issued.Cert, time.Now())
	// Round: the leaf is backdated a minute for clock skew.
	days := int(math.Round(issued.Cert.NotAfter.Sub(issued.Cert.NotBefore).Hours() / 24))
	fmt.Fprintf(a.out, "Issued a %s certificate for %s, valid until %s (%d days)\n",
		kind, describeNames(info), info.NotAfter.Format(time.DateOnly), days)
	fmt.Fprintf(a.out, "  certificate: %s\n  key:         %s\n", certFile, keyFile)
	if o.p12 {
		fmt.Fprintf(a.out, "  PKCS#12:     %s (%s)\n", p12File, o.p12Format)
	}
	fmt.Fprintf(a.out, "  signed by:   %s\n  SPKI pin:    %s\n", ca.CertFile(), info.SPKIPin)
}

func describeNames(info certs.CertInfo) string {
	var all []string
	all = append(all, info.DNSNames...)
	all = append(all, info.IPAddresses...)
	all = append(all, info.EmailAddresses...)
	all = append(all, info.URIs...)
	if len(all) == 0 {
		return "CN " + strconv.Quote(info.CommonName)
	}
	return strings.Join(all, ", ")
}

// inspectJSON is the --json form of "cert inspect"; field names are an
// interface for scripts.
type inspectJSON struct {
	Source        string           `json:"source"` // "file" or "server"
	File          string           `json:"file,omitempty"`
	Format        string           `json:"format,omitempty"`
	HasPrivateKey bool             `json:"has_private_key,omitempty"`
	Address       string           `json:"address,omitempty"`
	ServerName    string           `json:"server_name,omitempty"`
	TLSVersion    string           `json:"tls_version,omitempty"`
	CipherSuite   string           `json:"cipher_suite,omitempty"`
	ALPN          string           `json:"alpn,omitempty"`
	Certificates  []certs.CertInfo `json:"certificates"`
}

func newCertInspectCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect FILE|HOST:PORT",
		Short: "Summarise the certificates in a file or presented by a live server",
		Long: `inspect prints, for each certificate in a file (PEM, DER or PKCS#12) or in
the chain a TLS server presents: subject, issuer, names, validity with days
left, key type and size, signature algorithm, serial, SHA-256 fingerprint, SPKI
pin (base64 SHA-256 of the public key, what mutual-TLS allow-lists take), key
usage, extended key usage and CA flag.

A live server is only read, never judged (anything it sends is shown, expired
or untrusted); use "passerelle check" for the verdict. The argument is taken
as a file when such a file exists, otherwise as HOST:PORT.

PKCS#12 files are opened with --p12-password (as cert issue names it), else
$PASSERELLE_P12_PASSWORD, else the empty password.`,
		Example: `  passerelle cert inspect localhost.crt
  passerelle cert inspect alice-client.p12 --p12-password s3cret
  passerelle cert inspect localhost:10000
  passerelle cert inspect 127.0.0.1:10000 --servername chat.lan --json | jq -r '.certificates[0].days_left'`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("give one FILE or HOST:PORT to inspect (got %d arguments)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runInspect(cmd, args[0])
		},
	}
	f := cmd.Flags()
	f.String("p12-password", "", "PKCS#12 password (default: $"+p12PasswordEnv+")")
	// --password was this flag's first name; scripts may still use it.
	f.String("password", "", "the former name of --p12-password")
	_ = f.MarkHidden("password")
	f.String("servername", "", "server name (SNI) to ask a live server for (default: the host)")
	f.Duration("timeout", 10*time.Second, "time limit to connect to a live server and read its chain")
	f.Bool("json", false, "print one JSON object instead of text")
	return cmd
}

func (a *app) runInspect(cmd *cobra.Command, target string) error {
	f := cmd.Flags()
	asJSON, _ := f.GetBool("json")
	now := time.Now()
	var (
		rep    inspectJSON
		chain  []*x509.Certificate
		header string
	)
	data, readErr := readInspected(target)
	var pathErr *fs.PathError
	switch {
	case readErr == nil:
		password := os.Getenv(p12PasswordEnv)
		for _, name := range []string{"password", "p12-password"} { // the new name wins
			if f.Changed(name) {
				password, _ = f.GetString(name)
			}
		}
		cf, err := certs.ReadCertificates(data, password)
		if err != nil {
			if errors.Is(err, certs.ErrP12Password) {
				return fmt.Errorf("%s: wrong PKCS#12 password: give it with --p12-password or %s", target, p12PasswordEnv)
			}
			return fmt.Errorf("%s: %w", target, err)
		}
		chain = cf.Certificates
		rep = inspectJSON{Source: "file", File: target, Format: cf.Format, HasPrivateKey: cf.HasKey}
		header = fmt.Sprintf("%s: %s, %s", target, cf.Format, nCertificates(len(chain)))
		if cf.HasKey {
			header += ", with a private key"
		}
	case errors.Is(readErr, fs.ErrNotExist) && looksLikeAddress(target):
		serverName, _ := f.GetString("servername")
		timeout, _ := f.GetDuration("timeout")
		ctx, cancel := context.WithTimeout(a.ctx, timeout)
		defer cancel()
		live, err := certs.FetchChain(ctx, target, serverName)
		if err != nil {
			return err
		}
		chain = live.Certificates
		rep = inspectJSON{Source: "server", Address: live.Address, ServerName: live.ServerName,
			TLSVersion: live.TLSVersion, CipherSuite: live.CipherSuite, ALPN: live.ALPN}
		sn := live.ServerName
		if sn == "" {
			sn = "(none)"
		}
		header = fmt.Sprintf("%s, server name %s: %s, %s, %s", live.Address, sn, live.TLSVersion, live.CipherSuite,
			nCertificates(len(chain)))
	case errors.Is(readErr, fs.ErrNotExist):
		return fmt.Errorf("%s: no such file, and not a HOST:PORT address", target)
	case errors.Is(readErr, errInspectDir):
		return fmt.Errorf("%s: is a directory, want a PEM, DER or PKCS#12 file or HOST:PORT", target)
	case errors.As(readErr, &pathErr):
		// The path is already said once.
		return fmt.Errorf("%s: %w", target, pathErr.Err)
	default:
		return fmt.Errorf("%s: %w", target, readErr)
	}

	for _, c := range chain {
		rep.Certificates = append(rep.Certificates, certs.Describe(c, now))
	}
	return a.writeInspected(rep, header, asJSON)
}

// writeInspected prints what inspect found: the JSON report, or the header
// line and each certificate in words.
func (a *app) writeInspected(rep inspectJSON, header string, asJSON bool) error {
	if asJSON {
		return writeIndentedJSON(a.out, rep)
	}
	fmt.Fprintln(a.out, header)
	for i, info := range rep.Certificates {
		fmt.Fprintf(a.out, "\nCertificate %d of %d\n", i+1, len(rep.Certificates))
		if err := info.WriteText(a.out, "  "); err != nil {
			return err
		}
	}
	return nil
}

// maxInspectFile bounds what inspect reads: certificate files are a few
// kilobytes, a PKCS#12 bundle with a long chain some tens.
const maxInspectFile = 16 << 20

var errInspectDir = errors.New("is a directory")

// readInspected reads the file inspect was given, refusing folders and
// anything that is not a regular file (a FIFO would block, /dev/zero never
// end) or larger than maxInspectFile.
func readInspected(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, errInspectDir
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file, want a PEM, DER or PKCS#12 file or HOST:PORT")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxInspectFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxInspectFile {
		return nil, fmt.Errorf("larger than %d MiB: not a certificate file", maxInspectFile>>20)
	}
	return data, nil
}

// looksLikeAddress reports whether s is HOST:PORT with a numeric port.
func looksLikeAddress(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n < 65536
}

func nCertificates(n int) string {
	if n == 1 {
		return "1 certificate"
	}
	return fmt.Sprintf("%d certificates", n)
}
