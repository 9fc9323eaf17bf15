package secure

import (
	"crypto/x509"
	"log/slog"
	"net/http"
	"time"

	"github.com/passerelle/passerelle/certs/revocation"
)

// Role says which side of a connection a certificate is judged for. It picks
// the extended key usage the leaf must carry (RFC 5280 section 4.2.1.12).
type Role uint8

const (
	// RoleServer judges a certificate a server presented (serverAuth usage).
	RoleServer Role = iota
	// RoleClient judges a certificate a client presented (clientAuth usage).
	RoleClient
)

func (r Role) String() string {
	if r == RoleClient {
		return "client"
	}
	return "server"
}

func (r Role) extKeyUsage() x509.ExtKeyUsage {
	if r == RoleClient {
		return x509.ExtKeyUsageClientAuth
	}
	return x509.ExtKeyUsageServerAuth
}

// Verdict is the judgement on one presented certificate chain: the status in
// AIR's vocabulary, a human reason, and what was looked at.
type Verdict struct {
	// Status is one of the nine statuses; StatusUnknown before any judgement.
	Status Status `json:"status"`
	// Reason says, in one line, why the status is what it is.
	Reason string `json:"reason,omitempty"`
	// Name is the DNS name or IP address the certificate was checked against
	// (empty when no name was checked, as for client certificates).
	Name string `json:"name,omitempty"`
	// Certificates are the certificates the peer presented, leaf first, in
	// the order it sent them.
	Certificates []*x509.Certificate `json:"-"`
	// Chain is the path that was judged, leaf first, ending with the trusted
	// root when one was reached; intermediates fetched through the AIA
	// caIssuers URL appear here but not in Certificates.
	Chain []*x509.Certificate `json:"-"`
	// Revocation is what the revocation check found.
	Revocation RevocationResult `json:"revocation"`
}

// Leaf returns the presented end-entity certificate, or nil.
func (v Verdict) Leaf() *x509.Certificate {
	if len(v.Certificates) == 0 {
		return nil
	}
	return v.Certificates[0]
}

// VerifyOptions are the inputs of Classify. The zero value judges a server
// certificate against the system roots, with no name check, soft-fail
// revocation and AIA fetching on.
type VerifyOptions struct {
	// Roots are the trusted roots; nil means the system roots.
	Roots *x509.CertPool
	// Name is the DNS name or IP address the leaf must cover; empty skips the
	// name check (principalMismatch is then never reported).
	Name string
	// AcceptNames, when not empty, are names of which the leaf must cover at
	// least one: DNS names and IP addresses as for Name, e-mail addresses
	// and URIs compared exactly with the rfc822Name and URI subjectAltNames.
	// Servers use it to tie client certificates to expected peers.
	AcceptNames []string
	// Role picks the extended key usage the leaf must allow.
	Role Role
	// Now is the time the dates are judged at; zero means time.Now().
	Now time.Time
	// Revocation is the revocation mode (default RevocationSoft).
	Revocation RevocationMode
	// OCSPStaple is a stapled OCSP response (RFC 6066 section 8), if any.
	OCSPStaple []byte
	// CRLs are revocation lists the caller already holds (for example files
	// given on the command line); they are consulted before any network fetch.
	CRLs []*x509.RevocationList
	// NoAIAFetch turns off fetching a missing intermediate from the leaf's
	// AIA caIssuers URL (RFC 5280 section 4.2.2.1).
	NoAIAFetch bool
	// HTTPClient fetches AIA issuers, OCSP responses and CRLs; nil means a
	// client with a 5 second timeout.
	HTTPClient *http.Client
	// RevocationCache, when set, keeps the OCSP responses and CRLs fetched
	// for the next judgements (until their nextUpdate or HTTP max-age, at
	// most its MaxAge) and makes judgements running at once share one
	// request per URL. nil fetches every time.
	RevocationCache *revocation.Cache
	// Logger receives debug lines about fetches; nil discards.
	Logger *slog.Logger
}

func (o *VerifyOptions) now() time.Time {
	if o.Now.IsZero() {
		return time.Now()
	}
	return o.Now
}

func (o *VerifyOptions) httpClient() *http.Client {
	if o.HTTPClient != nil {
		return o.HTTPClient
	}
	return newFetchClient()
}

func (o *VerifyOptions) logger() *slog.Logger { return orDiscard(o.Logger) }

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
