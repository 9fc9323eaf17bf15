package testbed

import (
	"github.com/passerelle/passerelle/secure"
)

// ClientAuth says whether an endpoint asks the client for a certificate.
type ClientAuth string

// Client-certificate modes of an endpoint.
const (
	// ClientAuthNone never asks for a client certificate.
	ClientAuthNone ClientAuth = ""
	// ClientAuthRequest asks for one, accepts a connection without, and
	// tells the client its verdict ("unknown" when none was sent).
	ClientAuthRequest ClientAuth = "request"
	// ClientAuthRequire refuses the handshake when no certificate is sent
	// (TLS alert certificate_required in TLS 1.3, handshake_failure before).
	ClientAuthRequire ClientAuth = "require"
)

// OpenSSL X509_V_* verify codes (openssl/x509_vfy.h) that the endpoints
// produce. They are part of the manifest so that a client built on OpenSSL
// can compare its raw code as well as the status.
const (
	osslOK                 = 0  // X509_V_OK
	osslSignatureFailure   = 7  // X509_V_ERR_CERT_SIGNATURE_FAILURE
	osslCRLSignature       = 8  // X509_V_ERR_CRL_SIGNATURE_FAILURE
	osslNotYetValid        = 9  // X509_V_ERR_CERT_NOT_YET_VALID
	osslExpired            = 10 // X509_V_ERR_CERT_HAS_EXPIRED
	osslSelfSignedLeaf     = 18 // X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
	osslNoIssuer           = 20 // X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
	osslRevoked            = 23 // X509_V_ERR_CERT_REVOKED
	osslInvalidCA          = 79 // X509_V_ERR_INVALID_CA
	osslPathLength         = 25 // X509_V_ERR_PATH_LENGTH_EXCEEDED
	osslInvalidPurpose     = 26 // X509_V_ERR_INVALID_PURPOSE
	osslUnhandledCritical  = 34 // X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION
	osslPermittedViolation = 47 // X509_V_ERR_PERMITTED_VIOLATION
	osslExcludedViolation  = 48 // X509_V_ERR_EXCLUDED_VIOLATION
	osslHostnameMismatch   = 62 // X509_V_ERR_HOSTNAME_MISMATCH
)

// osslText is what "openssl s_client" prints after the code (OpenSSL 3.0).
var osslText = map[int]string{
	osslOK:                 "ok",
	osslSignatureFailure:   "certificate signature failure",
	osslCRLSignature:       "CRL signature failure",
	osslNotYetValid:        "certificate is not yet valid",
	osslExpired:            "certificate has expired",
	osslSelfSignedLeaf:     "self-signed certificate",
	osslNoIssuer:           "unable to get local issuer certificate",
	osslRevoked:            "certificate revoked",
	osslInvalidCA:          "invalid CA certificate",
	osslPathLength:         "path length constraint exceeded",
	osslInvalidPurpose:     "unsuitable certificate purpose",
	osslUnhandledCritical:  "unhandled critical extension",
	osslPermittedViolation: "permitted subtree violation",
	osslExcludedViolation:  "excluded subtree violation",
	osslHostnameMismatch:   "hostname mismatch",
	osslNoHandshake:        "no TLS handshake",
}

// plan is one endpoint to build: its name, what a client should conclude and
// how its certificate is made (see defects.go).
type plan struct {
	name        string
	status      secure.Status
	openssl     int
	clientAuth  ClientAuth
	needsAIA    bool // the status shows only for a client that fetches AIA issuers
	needsRevoke bool // the status shows only for a client that checks revocation
	// osslStatus is the status OpenSSL's verify code stands for, where
	// OpenSSL gets the endpoint wrong; "" where it agrees with status.
	osslStatus secure.Status
	// ipOnly endpoints have a leaf for IP addresses only: a client asks for
	// the address, sends no SNI (RFC 6066 section 3), so they are not on the
	// SNI port.
	ipOnly bool
	// noTLS endpoints never complete a TLS handshake: they have no
	// certificate and are not on the SNI port.
	noTLS       noTLS
	description string
	build       func(b *builder) (material, error)
}

// plans lists the endpoints in port order: endpoint i listens on
// base-port + firstEndpointOffset + i. Append new endpoints at the end so
// that existing ports stay where clients expect them.
var plans = []plan{
	{name: "trusted", status: secure.StatusTrusted, openssl: osslOK,
		description: "a good certificate from the testbed root, for every name the testbed answers to",
		build:       (*builder).trusted},
	{name: "expired", status: secure.StatusExpired, openssl: osslExpired,
		description: "the leaf's notAfter is 30 days in the past",
		build:       (*builder).expired},
	{name: "not-yet-valid", status: secure.StatusNotYetValid, openssl: osslNotYetValid,
		description: "the leaf's notBefore is 30 days in the future",
		build:       (*builder).notYetValid},
	{name: "principal-mismatch", status: secure.StatusPrincipalMismatch, openssl: osslHostnameMismatch,
		description: "a good certificate, but for " + mismatchName + " only",
		build:       (*builder).principalMismatch},
	{name: "self-signed", status: secure.StatusUntrustedSigners, openssl: osslSelfSignedLeaf,
		description: "a self-signed leaf",
		build:       (*builder).selfSigned},
	{name: "untrusted-root", status: secure.StatusUntrustedSigners, openssl: osslNoIssuer,
		description: "a leaf from a root that clients are not told to trust (the root is not sent)",
		build:       (*builder).untrustedRoot},
	{name: "incomplete-chain", status: secure.StatusInvalidChain, openssl: osslNoIssuer, needsAIA: true,
		description: "the server does not send the intermediate; the leaf's AIA caIssuers URL leads to it on the testbed's HTTP server",
		build:       (*builder).incompleteChain},
	{name: "non-ca-intermediate", status: secure.StatusInvalidChain, openssl: osslInvalidCA,
		description: "the leaf's issuer, sent by the server, is not a CA (basic constraints CA:FALSE)",
		build:       (*builder).nonCAIntermediate},
	{name: "path-length", status: secure.StatusInvalidChain, openssl: osslPathLength,
		description: "two intermediates under one whose path length constraint is 0",
		build:       (*builder).pathLength},
	{name: "name-constraints", status: secure.StatusInvalidChain, openssl: osslPermittedViolation,
		description: "the intermediate may only issue for " + constrainedDomain + "; the leaf names localhost",
		build:       (*builder).nameConstraints},
	{name: "bad-signature", status: secure.StatusInvalidChain, openssl: osslSignatureFailure,
		description: "the intermediate is sent, but the signature on the leaf does not verify with its key",
		build:       (*builder).badSignature},
	{name: "revoked", status: secure.StatusRevoked, openssl: osslRevoked, needsRevoke: true,
		description: "revoked: the server staples an OCSP response saying so, and the testbed's CRL and OCSP responder agree",
		build:       (*builder).revokedStapled},
	{name: "revoked-no-staple", status: secure.StatusRevoked, openssl: osslRevoked, needsRevoke: true,
		description: "revoked, with no staple: only the CRL and the OCSP responder named in the certificate tell",
		build:       (*builder).revokedUnstapled},
	{name: "client-auth-only", status: secure.StatusInvalid, openssl: osslInvalidPurpose,
		description: "a certificate not meant for servers: extended key usage clientAuth only",
		build:       (*builder).clientAuthOnly},
	{name: "unknown-critical-extension", status: secure.StatusInvalid, openssl: osslUnhandledCritical,
		description: "the leaf carries a critical extension no verifier knows",
		build:       (*builder).unknownCritical},
	{name: "client-cert-request", status: secure.StatusTrusted, openssl: osslOK, clientAuth: ClientAuthRequest,
		description: "asks for a client certificate, tells the verdict as the first XMLSocket message, then echoes",
		build:       (*builder).trusted},
	{name: "client-cert-require", status: secure.StatusTrusted, openssl: osslOK, clientAuth: ClientAuthRequire,
		description: "refuses a client without a certificate; otherwise tells the verdict, then echoes",
		build:       (*builder).trusted},
	{name: "plain-text", status: secure.StatusInvalid, openssl: osslNoHandshake, noTLS: plainText,
		description: "no TLS at all: the echo service in clear text, so the handshake fails"},
	{name: "silent", status: secure.StatusUnknown, openssl: osslNoHandshake, noTLS: silent,
		description: "accepts the connection and never answers: no handshake result, so the status stays unknown"},
	{name: "cross-signed-expired", status: secure.StatusTrusted, openssl: osslOK,
		description: "the intermediate is sent twice: first cross-signed by a retired root (expired, not trusted), then signed by the testbed root; only the second path is valid",
		build:       (*builder).crossSignedExpired},
	{name: "reversed-chain", status: secure.StatusTrusted, openssl: osslOK,
		description: "three intermediates sent top first: the root's child, its child, then the leaf's issuer",
		build:       (*builder).reversedChain},
	{name: "shuffled-chain", status: secure.StatusTrusted, openssl: osslOK,
		description: "three intermediates sent in no order: the middle one, the leaf's issuer, then the root's child",
		build:       (*builder).shuffledChain},
	{name: "extra-certificates", status: secure.StatusTrusted, openssl: osslOK,
		description: "the intermediate is sent among unrelated certificates: a root no one trusts, an intermediate and a leaf under it, a second intermediate of the testbed root",
		build:       (*builder).extraCertificates},
	// OpenSSL 3.0 takes the first namesake: without -crl_check it reports
	// the leaf's signature (7), with it the CRL's (8), which it checks with
	// the same wrong issuer.
	{name: "namesake-issuer", status: secure.StatusTrusted, openssl: osslCRLSignature, osslStatus: secure.StatusInvalid,
		description: "two intermediates with the same subject and key identifier but different keys are sent; the first did not sign the leaf, the second did",
		build:       (*builder).namesakeIssuer},
	{name: "name-constraints-excluded", status: secure.StatusInvalidChain, openssl: osslExcludedViolation,
		description: "the intermediate's name constraints exclude the leaf's DNS names",
		build:       (*builder).nameConstraintsExcluded},
	{name: "name-constraints-permitted", status: secure.StatusTrusted, openssl: osslOK,
		description: "the intermediate's name constraints permit only the leaf's DNS names: a good chain",
		build:       (*builder).nameConstraintsPermitted},
	// OpenSSL 3.0 checks a common name that looks like a host name against
	// DNS constraints when the leaf has no DNS name (NAME_CONSTRAINTS_check_CN),
	// and 127.0.0.1 looks like one to it.
	{name: "ip-san-dns-constraint", status: secure.StatusTrusted, openssl: osslPermittedViolation, osslStatus: secure.StatusInvalidChain, ipOnly: true,
		description: "the leaf names IP addresses only (its common name is the first), under an intermediate that may issue for DNS names under " + constrainedDomain + " only; a DNS constraint does not restrict IP addresses",
		build:       (*builder).ipUnderDNSConstraint},
}

// noTLS says how an endpoint without TLS behaves.
type noTLS uint8

const (
	withTLS   noTLS = iota
	plainText       // the seed echo in clear text: the client's handshake fails
	silent          // accepts and never answers: the client gives up
)

// osslNoHandshake stands for "no verify code": OpenSSL completes no
// handshake (in clear text it still prints 0 with cipher NONE).
const osslNoHandshake = -1

// Port layout relative to the base port.
const (
	httpOffset          = 0 // AIA issuers, CRLs, OCSP, the manifest
	sniOffset           = 1 // every endpoint, chosen by SNI
	firstEndpointOffset = 2
)

// Endpoint is one testbed endpoint as published in the manifest. It is the
// JSON contract scripts rely on; fields are only ever added.
type Endpoint struct {
	// Name is the endpoint's stable name, e.g. "expired".
	Name string `json:"name"`
	// Address is the endpoint's own host:port; it ignores SNI.
	Address string `json:"address"`
	// SNIAddress is the shared host:port where ServerName selects this
	// endpoint; empty for the endpoints that do not speak TLS.
	SNIAddress string `json:"sni_address"`
	// ServerName is the name a client should ask for (and verify): an IP
	// address for the endpoints whose leaf names addresses only, which are
	// not on the SNI port.
	ServerName string `json:"server_name"`
	// ExpectedStatus is the status a correct client reports for the server
	// certificate.
	ExpectedStatus secure.Status `json:"expected_status"`
	// CAFile is the PEM root a client should trust.
	CAFile string `json:"ca_file"`
	// ClientCert is true for the endpoints that judge a client certificate.
	ClientCert bool `json:"client_cert"`
	// ClientAuth is "request" or "require" for those endpoints.
	ClientAuth ClientAuth `json:"client_auth,omitempty"`
	// OpenSSLVerifyCode is -1 when no TLS handshake completes, else the
	// verify return code of
	//   openssl s_client -connect ADDRESS -servername SERVER_NAME
	//     -verify_hostname SERVER_NAME -CAfile CA_FILE -verify_return_error
	//     -crl_check -crl_download
	// (with -verify_ip SERVER_NAME instead of -servername and
	// -verify_hostname when SERVER_NAME is an IP address)
	OpenSSLVerifyCode int `json:"openssl_verify_code"`
	// OpenSSLVerifyText is the text OpenSSL prints with that code.
	OpenSSLVerifyText string `json:"openssl_verify_text"`
	// OpenSSLStatus is the status that OpenSSL's verdict stands for: the
	// expected status, except on the endpoints that OpenSSL 3.0 gets wrong.
	OpenSSLStatus secure.Status `json:"openssl_status"`
	// NeedsAIAFetch marks endpoints whose status shows only for a client
	// that fetches a missing intermediate from the AIA caIssuers URL; others
	// see the OpenSSL code above and must map it.
	NeedsAIAFetch bool `json:"needs_aia_fetch,omitempty"`
	// NeedsRevocationCheck marks endpoints whose status shows only for a
	// client that checks revocation (stapled OCSP, OCSP or CRL).
	NeedsRevocationCheck bool `json:"needs_revocation_check,omitempty"`
	// Description says what is wrong with the certificate.
	Description string `json:"description"`
}
