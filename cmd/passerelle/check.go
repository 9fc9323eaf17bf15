package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/certs/revocation"
	"github.com/passerelle/passerelle/internal/termsafe"
	"github.com/passerelle/passerelle/secure"
	"github.com/passerelle/passerelle/testbed"
)

// checkExitCodes is the exit status of "passerelle check" per certificate
// status. It is an interface for scripts: keep it stable (docs/check.md).
// Exit 1 means no verdict at all: bad usage, or no TCP connection; exit
// checkExitClientRefused means the server's certificate was trusted but the
// server refused the client certificate given with --cert.
const checkExitClientRefused = 10

var checkExitCodes = map[secure.Status]int{
	secure.StatusTrusted:           0,
	secure.StatusUnknown:           2,
	secure.StatusInvalid:           3,
	secure.StatusInvalidChain:      4,
	secure.StatusExpired:           5,
	secure.StatusNotYetValid:       6,
	secure.StatusPrincipalMismatch: 7,
	secure.StatusRevoked:           8,
	secure.StatusUntrustedSigners:  9,
}

// checkOptions is what "passerelle check" was asked to do.
type checkOptions struct {
	addr       string
	serverName string
	caFile     string
	certFile   string
	keyFile    string
	revocation string
	crlFiles   []string
	alpn       []string
	timeout    time.Duration
	noAIA      bool
	json       bool
	dataDir    string
}

func newCheckCmd(a *app) *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:   "check HOST:PORT",
		Short: "Connect like a SecureSocket and print the certificate status and chain",
		Long: `check connects to a TLS server the way AIR's SecureSocket does, judges the
server's certificate and prints its status first (one of trusted, unknown,
invalid, invalidChain, expired, notYetValid, principalMismatch, revoked,
untrustedSigners), then the chain the server presented (subject, issuer,
names, validity, key, serial, SHA-256 fingerprint), the TLS version, cipher
suite, ALPN protocol and stapled OCSP response.

Trust: with --ca, only the certificates in that PEM file; without it, the
system roots plus the local CA of the data folder if there is one.

Revocation is checked in soft-fail mode unless --revocation says otherwise:
the stapled OCSP response, the --crl files, the OCSP responder and the CRL
distribution points named by the certificate. A missing intermediate is
fetched from the certificate's CA issuers URL, as browsers do (the status is
then invalidChain: the server should have sent it); --no-aia-fetch turns that
off.

Exit status: 0 trusted, 2 unknown, 3 invalid, 4 invalidChain, 5 expired,
6 notYetValid, 7 principalMismatch, 8 revoked, 9 untrustedSigners; 1 when no
verdict could be reached at all (bad usage, no TCP connection); 10 when the
server's certificate is trusted but the server refused the --cert client
certificate.`,
		Example: `  passerelle check localhost:10000
  passerelle check example.org:443 --json | jq -r .status
  passerelle check 127.0.0.1:10443 --servername chat.example.org --ca ./root.pem
  passerelle check localhost:10000 --cert alice.crt --key alice.key
  passerelle check example.org:443 --revocation hard --crl ./ca.crl`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("check needs the server's address as HOST:PORT (got %d argument(s))", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.addr = args[0]
			o.revocation = a.v.GetString("check.revocation")
			o.timeout = a.v.GetDuration("check.timeout")
			o.dataDir = a.dataDir()
			return runCheck(a, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.serverName, "servername", "", "name to ask for (SNI) and to check the certificate against (default: the host of HOST:PORT)")
	f.StringVar(&o.caFile, "ca", "", "PEM file of the roots to trust (default: system roots plus the local CA)")
	f.StringVar(&o.certFile, "cert", "", "client certificate (PEM, with its chain) for servers that ask for one")
	f.StringVar(&o.keyFile, "key", "", "private key (PEM) of --cert")
	f.String("revocation", "soft", "revocation checking: off, soft (unreachable sources are ignored) or hard")
	f.StringArrayVar(&o.crlFiles, "crl", nil, "CRL file (DER or PEM) to consult before any network source; repeatable")
	f.StringSliceVar(&o.alpn, "alpn", nil, "ALPN protocols to offer, comma-separated")
	f.Duration("timeout", 10*time.Second, "time allowed to connect, handshake and check revocation")
	f.BoolVar(&o.noAIA, "no-aia-fetch", false, "do not fetch a missing intermediate from the certificate's CA issuers URL")
	f.BoolVar(&o.json, "json", false, "print one JSON object instead of text")
	mustBind(a.v, "check.revocation", f.Lookup("revocation"))
	mustBind(a.v, "check.timeout", f.Lookup("timeout"))
	return cmd
}

// checkReport is the --json output. Its field names are an interface for
// scripts: keep them stable.
type checkReport struct {
	Status secure.Status `json:"status"`
	Reason string        `json:"reason,omitempty"`
	Error  string        `json:"error,omitempty"`
	// ClientCertificate says what became of --cert: "not requested",
	// "accepted" or "refused: <alert>"; absent without --cert.
	ClientCertificate string                  `json:"client_certificate,omitempty"`
	Address           string                  `json:"address"`
	ServerName        string                  `json:"server_name"`
	TLS               *checkTLS               `json:"tls,omitempty"`
	Revocation        secure.RevocationResult `json:"revocation"`
	// Chain is what the server presented, leaf first.
	Chain []certs.CertInfo `json:"chain"`
	// Path is the path judged, leaf first, up to the trusted root when one
	// was reached (subjects only).
	Path []string `json:"path,omitempty"`
}

type checkTLS struct {
	Version     string `json:"version"`
	CipherSuite string `json:"cipher_suite"`
	ALPN        string `json:"alpn,omitempty"`
	// OCSPStaple is "none", or what the stapled response says.
	OCSPStaple string `json:"ocsp_staple"`
}

// addVerdict fills the report with what the handshake said: the status and
// its reason, the chain as sent and as verified, and the TLS details
// (state is nil when the handshake got nowhere).
func (rep *checkReport) addVerdict(v secure.Verdict, state *tls.ConnectionState, now time.Time) {
	rep.Status, rep.Reason, rep.Revocation = v.Status, v.Reason, v.Revocation
	if rep.Error != "" && v.Status != secure.StatusUnknown && strings.Contains(rep.Error, v.Reason) {
		rep.Error = "" // the reason already says it
	}
	for _, c := range v.Certificates {
		rep.Chain = append(rep.Chain, certs.Describe(c, now))
	}
	for _, c := range v.Chain {
		rep.Path = append(rep.Path, c.Subject.String())
	}
	if state != nil {
		rep.TLS = &checkTLS{
			Version:     tls.VersionName(state.Version),
			CipherSuite: tls.CipherSuiteName(state.CipherSuite),
			ALPN:        state.NegotiatedProtocol,
			OCSPStaple:  stapleSummary(state, v),
		}
	}
}

func runCheck(a *app, o checkOptions) error {
	cfg, err := o.clientConfig()
	if err != nil {
		return err
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout %s: must be positive", o.timeout)
	}
	host, _, err := net.SplitHostPort(o.addr)
	if err != nil || host == "" {
		return fmt.Errorf("address %q: want HOST:PORT", o.addr)
	}
	cfg.Logger = a.log
	ctx, cancel := context.WithTimeout(a.ctx, o.timeout)
	defer cancel()

	rep := checkReport{Address: o.addr, ServerName: cfg.ServerName, Chain: []certs.CertInfo{}}
	if rep.ServerName == "" {
		rep.ServerName = host
	}
	var v secure.Verdict
	var state *tls.ConnectionState
	conn, err := secure.Dial(ctx, o.addr, cfg)
	var he *secure.HandshakeError
	switch {
	case err == nil:
		v = conn.Verdict()
		cs := conn.ConnectionState()
		state = &cs
		if len(cfg.Certificates) > 0 {
			rep.ClientCertificate = probeClientCert(conn)
		}
		conn.Close()
	case errors.As(err, &he):
		v, state = he.Verdict, he.State
		rep.Error = he.Err.Error()
	default:
		// No TCP connection: no verdict at all.
		// The JSON object names the address already: its error is the
		// dial's own.
		rep.Status, rep.Error = secure.StatusUnknown, err.Error()
		if o.json {
			writeJSON(a.out, rep)
			return &exitError{code: 1}
		}
		return termsafe.Error(connectFailure(o.addr, err, errors.Is(err, context.DeadlineExceeded) && a.ctx.Err() == nil, o.timeout))
	}
	rep.addVerdict(v, state, time.Now())
	if o.json {
		if err := writeJSON(a.out, rep); err != nil {
			return err
		}
	} else if err := writeCheckText(a.out, rep); err != nil {
		return err
	}
	if code := checkExitCodes[v.Status]; code != 0 {
		return &exitError{code: code}
	}
	if strings.HasPrefix(rep.ClientCertificate, "refused") {
		return &exitError{code: checkExitClientRefused}
	}
	return nil
}

// clientCertWait is how long check listens for a refusal of its client
// certificate. In TLS 1.3 the server judges it after the client has
// finished the handshake (RFC 8446 section 4.4.2), so a refusal can only
// arrive as an alert on the first read.
const clientCertWait = 500 * time.Millisecond

func probeClientCert(conn *secure.ClientConn) string {
	if !conn.ClientCertRequested() {
		return "not requested"
	}
	conn.SetReadDeadline(time.Now().Add(clientCertWait))
	// A testbed client-certificate endpoint says what it made of the
	// certificate in its first message; read that much at most.
	first, err := bufio.NewReaderSize(io.LimitReader(conn, maxVerdictMessage), maxVerdictMessage).ReadBytes(0)
	if err != nil && strings.Contains(err.Error(), "remote error") {
		return "refused: " + err.Error()
	}
	if v, perr := testbed.ParseVerdict(first); err == nil && perr == nil {
		verdict := "accepted; the server judged it " + string(v.Status)
		if v.Reason != "" {
			verdict += ": " + v.Reason
		}
		return verdict
	}
	return "accepted"
}

// maxVerdictMessage bounds what check reads of a server's first message.
const maxVerdictMessage = 4096

// clientConfig turns the flags into a secure.ClientConfig.
func (o checkOptions) clientConfig() (secure.ClientConfig, error) {
	cfg := secure.ClientConfig{ServerName: o.serverName, NextProtos: o.alpn, NoAIAFetch: o.noAIA}
	mode, err := secure.ParseRevocationMode(o.revocation)
	if err != nil {
		return cfg, fmt.Errorf("--revocation: %w", err)
	}
	cfg.Revocation = mode
	if cfg.RootCAs, err = checkRoots(o.caFile, o.dataDir); err != nil {
		return cfg, err
	}
	if (o.certFile == "") != (o.keyFile == "") {
		return cfg, errors.New("--cert and --key go together: give both or neither")
	}
	if o.certFile != "" {
		pair, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			return cfg, fmt.Errorf("--cert %s --key %s: %w", o.certFile, o.keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	for _, f := range o.crlFiles {
		crls, err := revocation.LoadCRLFile(f)
		if err != nil {
			return cfg, fmt.Errorf("--crl %s: %w", f, err)
		}
		cfg.CRLs = append(cfg.CRLs, crls...)
	}
	return cfg, nil
}

// checkRoots is the trust of check: exactly the --ca file when given, so a
// test of a private PKI is not blurred by the system roots; otherwise the
// system roots plus the local CA.
func checkRoots(caFile, dataDir string) (*x509.CertPool, error) {
	if caFile != "" {
		return certs.AddCAFile(nil, "--ca", caFile)
	}
	return clientRoots(dataDir, "")
}

func stapleSummary(state *tls.ConnectionState, v secure.Verdict) string {
	if len(state.OCSPResponse) == 0 {
		return "none"
	}
	if v.Revocation.Source == revocation.SourceOCSPStaple {
		return string(v.Revocation.Status)
	}
	return fmt.Sprintf("present (%d bytes, not used)", len(state.OCSPResponse))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeCheckText prints the report for a person. The reason, the error and
// the subjects quote the server's certificate, so every value is escaped for
// the terminal; the JSON form escapes control characters by itself.
func writeCheckText(w io.Writer, r checkReport) error {
	var b strings.Builder
	esc := termsafe.Escape
	fmt.Fprintf(&b, "status: %s\n", r.Status)
	if r.Reason != "" {
		fmt.Fprintf(&b, "reason: %s\n", esc(r.Reason))
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "error: %s\n", esc(r.Error))
	}
	fmt.Fprintf(&b, "server: %s (server name %s)\n", esc(r.Address), esc(r.ServerName))
	if r.ClientCertificate != "" {
		fmt.Fprintf(&b, "client certificate: %s\n", esc(r.ClientCertificate))
	}
	if r.TLS != nil {
		alpn := r.TLS.ALPN
		if alpn == "" {
			alpn = "none"
		}
		fmt.Fprintf(&b, "tls: %s, %s, ALPN %s\n", r.TLS.Version, r.TLS.CipherSuite, esc(alpn))
		fmt.Fprintf(&b, "ocsp staple: %s\n", esc(r.TLS.OCSPStaple))
	}
	fmt.Fprintf(&b, "revocation: %s\n", esc(revocationSummary(r.Revocation)))
	fmt.Fprintf(&b, "chain presented (%d):\n", len(r.Chain))
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	for i, c := range r.Chain {
		if _, err := fmt.Fprintf(w, "  [%d]\n", i); err != nil {
			return err
		}
		if err := c.WriteText(w, "    "); err != nil {
			return err
		}
	}
	if len(r.Path) > 0 {
		_, err := fmt.Fprintf(w, "path judged: %s\n", esc(strings.Join(r.Path, " <- ")))
		return err
	}
	return nil
}

func revocationSummary(r secure.RevocationResult) string {
	if r.Status == secure.RevocationUnchecked {
		return "not checked"
	}
	s := string(r.Status)
	if r.Source != "" {
		s += " (" + r.Source
		if r.URL != "" {
			s += " " + r.URL
		}
		s += ")"
	}
	if r.Detail != "" {
		s += ": " + r.Detail
	}
	return s
}
