package testbed

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/certs/revocation"
	"github.com/passerelle/passerelle/secure"
	"github.com/passerelle/passerelle/secure/allow"
)

// verdictNamespace is the XML namespace of the verdict element.
const verdictNamespace = "urn:passerelle:testbed"

// clientCRLs are the CRLs client certificates are judged against: every
// testbed issuer's current list, the root's holding the client certificates
// "testbed client-certs" revoked (reread here, so certificates issued while
// the testbed runs are judged right).
func (t *Testbed) clientCRLs() []*x509.RevocationList {
	if err := t.syncRevokedClients(); err != nil {
		t.log.Warn("revoked client list unreadable", "error", err)
	}
	var crls []*x509.RevocationList
	for _, iss := range t.issuers() {
		der, err := iss.crl.CRL()
		if err != nil {
			t.log.Warn("crl unavailable", "issuer", iss.name, "error", err)
			continue
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.log.Warn("crl unreadable", "issuer", iss.name, "error", err)
			continue
		}
		crls = append(crls, crl)
	}
	return crls
}

// clientVerdict completes secure.Server's verdict on a client's
// certificates, in the same vocabulary clients use for servers:
//
//   - no certificate: unknown;
//   - otherwise secure.Classify for the client role against the testbed root
//     with clientCRLs, as secure.Server judged it (clientPolicy);
//   - a trusted certificate whose common name is outside clientNamePattern:
//     principalMismatch (the endpoint's allow-list, secure/allow). This is
//     not secure.ServerConfig.ClientNames, which matches subjectAltNames
//     and not a common-name pattern.
func (t *Testbed) clientVerdict(v secure.Verdict) secure.Verdict {
	if v.Leaf() == nil {
		return secure.Verdict{Status: secure.StatusUnknown, Reason: "no client certificate presented"}
	}
	if v.Status == secure.StatusTrusted {
		if err := allow.Authorize(t.allow)(v); err != nil {
			v.Status = secure.StatusPrincipalMismatch
			v.Reason = err.Error()
		}
	}
	return v
}

// verdictMessage is the first XMLSocket frame of a client-certificate
// endpoint:
//
//	<passerelle:client-certificate xmlns:passerelle="urn:passerelle:testbed"
//	  endpoint="client-cert-request" status="expired" subject="CN=..."
//	  issuer="CN=..." reason="..."/>
//
// followed by a NUL. The namespace is declared because AS3's XML parser
// rejects an unbound prefix. subject and issuer are empty when no
// certificate was sent.
func verdictMessage(endpoint string, v secure.Verdict) []byte {
	var b bytes.Buffer
	b.WriteString(`<passerelle:client-certificate xmlns:passerelle="` + verdictNamespace + `"`)
	attr := func(k, val string) {
		b.WriteString(" " + k + `="`)
		_ = xml.EscapeText(&b, []byte(val)) // writes to a buffer: cannot fail
		b.WriteString(`"`)
	}
	attr("endpoint", endpoint)
	attr("status", string(v.Status))
	attr("subject", subjectOf(v.Leaf()))
	issuer := ""
	if l := v.Leaf(); l != nil {
		issuer = l.Issuer.String()
	}
	attr("issuer", issuer)
	attr("reason", v.Reason)
	b.WriteString("/>\x00")
	return b.Bytes()
}

// ClientVerdict is a verdict message as parsed by a client.
type ClientVerdict struct {
	XMLName  xml.Name      `xml:"urn:passerelle:testbed client-certificate"`
	Endpoint string        `xml:"endpoint,attr"`
	Status   secure.Status `xml:"status,attr"`
	Subject  string        `xml:"subject,attr"`
	Issuer   string        `xml:"issuer,attr"`
	Reason   string        `xml:"reason,attr"`
}

// ParseVerdict parses a verdict frame (with or without its NUL).
func ParseVerdict(frame []byte) (ClientVerdict, error) {
	var v ClientVerdict
	if err := xml.Unmarshal(bytes.TrimSuffix(frame, []byte{0}), &v); err != nil {
		return v, fmt.Errorf("testbed: verdict message %q: %w", frame, err)
	}
	if !v.Status.Valid() {
		return v, fmt.Errorf("testbed: verdict message %q: unknown certificate status %q: want one of trusted, unknown, invalid, invalidChain, expired, notYetValid, principalMismatch, revoked, untrustedSigners", frame, string(v.Status))
	}
	return v, nil
}

func subjectOf(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	return c.Subject.String()
}

// revokedClientsName is the file, in Config.Dir, listing the serials (hex,
// one per line, '#' comments) of the client certificates "testbed
// client-certs" issued as revoked. The running testbed rereads it when it
// changes, so client certificates issued while it runs are judged right.
const revokedClientsName = "revoked-clients.txt"

// syncRevokedClients revokes, in the root's list, every serial of the
// revoked-clients file not yet there. The file is reread only when its
// modification time changes.
func (t *Testbed) syncRevokedClients() error {
	path := filepath.Join(t.cfg.Dir, revokedClientsName)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	t.revokedMu.Lock()
	defer t.revokedMu.Unlock()
	if fi.ModTime().Equal(t.revokedMod) {
		return nil
	}
	serials, err := readRevokedClients(path)
	if err != nil {
		return err
	}
	for _, s := range serials {
		if _, ok := t.root.list.Lookup(s); ok {
			continue
		}
		if err := t.root.list.Revoke(s, fi.ModTime(), revocation.ReasonKeyCompromise); err != nil {
			return fmt.Errorf("testbed: %s: %w", path, err)
		}
	}
	t.revokedMod = fi.ModTime()
	return nil
}

func readRevokedClients(path string) ([]*big.Int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("testbed: %w", err)
	}
	var out []*big.Int
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		n, ok := new(big.Int).SetString(s, 16)
		if !ok || n.Sign() < 0 {
			return nil, fmt.Errorf("testbed: %s line %d: %q is not a hexadecimal serial number", path, line, s)
		}
		out = append(out, n)
	}
	return out, nil
}

// addRevokedClient appends serial to the revoked-clients file, keeping the
// most recent maxRevokedClients entries, atomically.
func addRevokedClient(dir string, serial *big.Int, now time.Time) error {
	const maxRevokedClients = 200
	path := filepath.Join(dir, revokedClientsName)
	old, err := readRevokedClients(path)
	if err != nil {
		return err
	}
	old = append(old, serial)
	if len(old) > maxRevokedClients {
		old = old[len(old)-maxRevokedClients:]
	}
	var b strings.Builder
	b.WriteString("# Serial numbers of client certificates issued revoked by \"passerelle testbed client-certs\".\n")
	b.WriteString("# Last changed " + now.UTC().Format(time.RFC3339) + ". The testbed rereads this file when it changes.\n")
	for _, s := range old {
		b.WriteString(s.Text(16) + "\n")
	}
	return certs.WriteFileAtomic(path, []byte(b.String()), 0o644)
}
