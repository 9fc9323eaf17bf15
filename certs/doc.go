// Package certs gives passerelle its certificates: a local certificate
// authority, issuing of server and client certificates, and (through
// certmagic) certificates that obtain and renew themselves, from the local CA
// or from an ACME CA.
//
// # The model
//
// Everything lives in the data folder (the data_dir setting):
//
//	<data_dir>/ca/ca.pem         local CA certificate (what clients trust)
//	<data_dir>/ca/ca-key.pem     local CA private key (0600)
//	<data_dir>/certmagic/        certmagic storage: managed certificates, ACME accounts, locks
//
// The local CA (ca.go) is a self-signed ECDSA P-256 root valid ten years,
// made once by LoadOrCreateCA and signing leaves directly, mkcert-style:
// 128-bit random serials, a subject key identifier computed from the public
// key, a path length of zero so it cannot sign intermediates, leaves of 90
// days by default and never more than 825 days. Every file is written
// atomically (WriteFileAtomic) and private keys are readable by their owner
// only.
//
// Names (names.go) are sorted into subjectAltName fields the way mkcert does:
// an IP address, an e-mail address when it has an @, a URI when it has ://,
// otherwise a DNS name, where a wildcard is allowed as the whole leftmost
// label. Anything else is an *InvalidNameError saying why.
//
// # Where to start reading
//
//   - ca.go: LoadCA, LoadOrCreateCA, CreateCA, the CA type.
//   - issue.go: IssueRequest, (*CA).Issue, Issued.
//   - names.go: ClassifyName, ParseNames.
//   - keys.go: KeyType, GenerateKey, PEM encoding of keys.
//   - files.go: WriteFileAtomic.
package certs
