package allow

import (
	"strconv"

	"github.com/passerelle/passerelle/certs"
	"github.com/passerelle/passerelle/secure"
)

// Authorize adapts l to secure.ServerConfig.Authorize. The hook receives the
// server's verdict on the client certificate; the returned function allows:
//
//   - everything when l is empty;
//   - a certificate whose SPKI pin is listed, whatever its status: the
//     handshake proved the client holds the private key, and that key is
//     what the pin names;
//   - a certificate whose common name, DNS name or URI matches, only when the
//     verdict is "trusted": a name in an unverified certificate proves
//     nothing.
//
// Everything else gets a *DeniedError.
func Authorize(l List) func(secure.Verdict) error {
	return func(v secure.Verdict) error {
		if l.Empty() {
			return nil
		}
		if len(v.Certificates) == 0 || v.Certificates[0] == nil {
			return &DeniedError{Reason: "no client certificate presented"}
		}
		leaf := v.Certificates[0]
		if l.matchPin(leaf) {
			return nil
		}
		if v.Status == secure.StatusTrusted {
			if l.matchNames(leaf) {
				return nil
			}
			return l.denied(leaf)
		}
		reason := "client certificate is " + strconv.Quote(string(v.Status))
		if v.Reason != "" {
			reason += " (" + v.Reason + ")"
		}
		if len(l.SPKIPins) > 0 {
			reason += " and its SPKI pin " + strconv.Quote(certs.SPKIPin(leaf)) + " is not in allow-list"
		} else {
			reason += ": names are only allowed from a verified chain"
		}
		return &DeniedError{Subject: leaf.Subject.String(), Reason: reason}
	}
}
