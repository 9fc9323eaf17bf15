// Package certs gives passerelle its certificates: a local certificate
// authority, issuing of server and client certificates, certificates that
// obtain and renew themselves through certmagic (from the local CA or from
// an ACME CA), and certificates from files that reload when they change. It
// also holds the certificate tooling the commands use (trust stores,
// PKCS#12, inspection); revocation lives in the revocation sub-package.
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
// only. An existing CA is never replaced: a missing half, a corrupt file or
// a key that does not match is an error naming the file.
//
// Names (names.go) are sorted into subjectAltName fields the way mkcert does:
// an IP address, an e-mail address when it has an @, a URI when it has ://,
// otherwise a DNS name, where a wildcard is allowed as the whole leftmost
// label. Anything else is an *InvalidNameError saying why.
//
// # Certificates for listeners
//
// A Manager (manager.go) hands each TLS listener a Source: a GetCertificate
// callback and the ALPN protocols to offer, which plug into
// secure.ServerConfig or a tls.Config. The listener's TLSSpec picks the mode:
//
//   - local (source.go, localissuer.go): the local CA is a certmagic Issuer,
//     so local certificates live in the same certmagic cache, storage and
//     renewal loop as ACME ones. A listener gets one certificate naming all
//     its names, managed under the first, so that a client sending no
//     server name verifies whichever name it checks. It is issued (or loaded
//     from storage) before Source returns, lasts 30 days and is renewed in
//     the last third of its life.
//   - acme (acme.go): certmagic obtains and renews certificates from an ACME
//     CA over TLS-ALPN-01, answered by the listener itself through
//     GetCertificate (hence "acme-tls/1" in NextProtos), optionally
//     HTTP-01. It never prompts on a terminal. If the CA cannot be reached
//     at start but storage holds a valid certificate, that one is served and
//     the log says so; with none, Source returns an *ACMEError saying what
//     to check.
//   - files (filesource.go, ocsp.go): user-given PEM files behind an
//     atomic.Pointer, reloaded when their folder changes (fsnotify) or on
//     Manager.Reload (SIGHUP). New handshakes get the new certificate; open
//     connections keep theirs; bad new files keep the old certificate and
//     log why. An OCSP response is stapled when the leaf names a responder.
//
// The Manager owns its certmagic instances (certmagic.NewCache and
// certmagic.New, never the package defaults) and routes certmagic's zap logs
// into its slog logger (zaplog.go). Close stops renewals and watchers.
//
// # Where to start reading
//
//   - ca.go: LoadCA, LoadOrCreateCA, CreateCA, the CA type.
//   - issue.go: IssueRequest, (*CA).Issue, Issued.
//   - manager.go then source.go: NewManager, (*Manager).Source, TLSSpec.
//   - acme.go, localissuer.go, filesource.go: one file per mode.
//   - names.go, keys.go, files.go: names, keys, atomic writes.
//   - pool.go: AddCAFile, the one way passerelle reads a CA file into a
//     pool (--ca, tls.client_ca_file, acme.ca_root, cluster.tls.ca_file).
//   - inspect.go: Describe, ReadCertificates (PEM, DER, PKCS#12) and
//     FetchChain, behind passerelle cert inspect; SPKIPin, the one pin of a
//     public key, which secure/allow's allow-lists match too.
//   - pkcs12.go: EncodePKCS12 and DecodePKCS12, for the files AIR and
//     OpenFL applications load.
//   - truststore.go: InstallTrust and UninstallTrust (system, NSS and Java
//     stores through smallstep/truststore), each store's outcome reported;
//     javastore.go: the copy Debian's update-ca-certificates makes in
//     Java's key store, which UninstallTrust removes too.
package certs
