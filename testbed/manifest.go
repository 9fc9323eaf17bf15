package testbed

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/passerelle/passerelle/certs"
)

// manifestJSON is the manifest: a JSON array, one object per endpoint, in
// port order (see Endpoint for the fields).
func (t *Testbed) manifestJSON() ([]byte, error) {
	b, err := json.MarshalIndent(t.Endpoints(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("testbed: manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// WriteManifest writes the manifest to path atomically.
func (t *Testbed) WriteManifest(path string) error {
	b, err := t.manifestJSON()
	if err != nil {
		return err
	}
	if err := certs.WriteFileAtomic(path, b, 0o644); err != nil {
		return fmt.Errorf("testbed: manifest: %w", err)
	}
	return nil
}

// WriteTable prints one line per endpoint: name, address, server name,
// expected status and what OpenSSL reports.
func WriteTable(w io.Writer, eps []Endpoint) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tADDRESS\tSERVER NAME\tEXPECTED STATUS\tOPENSSL VERIFY\tNOTE")
	for _, e := range eps {
		note := ""
		switch {
		case e.OpenSSLVerifyCode == osslNoHandshake:
			note = "no TLS"
		case e.ClientAuth != ClientAuthNone:
			note = "client certificate: " + string(e.ClientAuth)
		case e.NeedsAIAFetch:
			note = "status needs an AIA fetch"
		case e.NeedsRevocationCheck:
			note = "status needs a revocation check"
		case e.OpenSSLStatus != e.ExpectedStatus:
			note = "OpenSSL 3.0 gets it wrong: " + string(e.OpenSSLStatus)
		case e.SNIAddress == "":
			note = "IP address: not on the SNI port"
		}
		ossl := strconv.Itoa(e.OpenSSLVerifyCode) + " (" + e.OpenSSLVerifyText + ")"
		if e.OpenSSLVerifyCode == osslNoHandshake {
			ossl = e.OpenSSLVerifyText
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Address, e.ServerName, e.ExpectedStatus, ossl, note)
	}
	return tw.Flush()
}
