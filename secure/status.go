package secure

// Status is the verdict on a peer's certificate, in the vocabulary of AIR's
// flash.security.CertificateStatus. The nine values are spelled exactly as AIR
// spells them so that scripts and AIR applications can compare strings.
type Status string

// The nine certificate statuses. See the package documentation for the rules
// that map a handshake outcome to one of them.
const (
	// StatusUnknown is the value before any handshake result is known.
	StatusUnknown Status = "unknown"
	// StatusTrusted means the chain verified, the name matched and nothing was revoked.
	StatusTrusted Status = "trusted"
	// StatusInvalid is every failure not named by a more specific status.
	StatusInvalid Status = "invalid"
	// StatusInvalidChain means the chain is broken in itself.
	StatusInvalidChain Status = "invalidChain"
	// StatusExpired means the leaf's notAfter is in the past.
	StatusExpired Status = "expired"
	// StatusNotYetValid means the leaf's notBefore is in the future.
	StatusNotYetValid Status = "notYetValid"
	// StatusPrincipalMismatch means the name asked for is not in the certificate.
	StatusPrincipalMismatch Status = "principalMismatch"
	// StatusRevoked means an OCSP response or a CRL revoked the certificate.
	StatusRevoked Status = "revoked"
	// StatusUntrustedSigners means the chain does not reach a trusted root.
	StatusUntrustedSigners Status = "untrustedSigners"
)

// Statuses lists the nine statuses in a stable order.
var Statuses = [...]Status{
	StatusTrusted, StatusUnknown, StatusInvalid, StatusInvalidChain, StatusExpired,
	StatusNotYetValid, StatusPrincipalMismatch, StatusRevoked, StatusUntrustedSigners,
}

// String returns the AIR spelling of the status.
func (s Status) String() string { return string(s) }

// Valid reports whether s is one of the nine statuses.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if s == v {
			return true
		}
	}
	return false
}
