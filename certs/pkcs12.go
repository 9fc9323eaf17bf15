package certs

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// P12Format chooses the algorithms of a PKCS#12 file.
type P12Format string

// PKCS#12 formats.
//
// P12Legacy, the default, is what AIR and OpenFL applications can load
// everywhere they run: certificates and key encrypted with
// pbeWithSHAAnd3-KeyTripleDES-CBC and a SHA-1 MAC (RFC 7292 appendix B
// and C). AIR on macOS imports through the Keychain (SecPKCS12Import), which
// only recently learned PBES2/AES; Windows before Server 2019 / Windows 10
// 1709, Java before 12 (AIR's own ADT runs on Java) and older Android cannot
// read AES-encrypted files at all. 3DES rather than RC2 because OpenSSL 3
// reads 3DES files with its default provider, whereas RC2 files need
// "-legacy". The weak cipher is acceptable for a file meant to be moved to a
// device and imported; it is no substitute for keeping the file private.
//
// P12Modern encrypts with PBES2 (PBKDF2-HMAC-SHA-256, AES-256-CBC) and MACs
// with HMAC-SHA-256: the OpenSSL 3 default, for OpenSSL 1.1.1+, Java 12+ and
// Windows Server 2019+ consumers.
const (
	P12Legacy P12Format = "legacy"
	P12Modern P12Format = "modern"
)

// ParseP12Format accepts "legacy" (also the empty string) or "modern".
func ParseP12Format(s string) (P12Format, error) {
	switch P12Format(strings.ToLower(strings.TrimSpace(s))) {
	case "", P12Legacy:
		return P12Legacy, nil
	case P12Modern:
		return P12Modern, nil
	default:
		return "", fmt.Errorf("unknown PKCS#12 format %q: want legacy or modern", s)
	}
}

// ErrP12Password is wrapped by DecodePKCS12 when the password is wrong, so
// that a command can tell the user to give the right one.
var ErrP12Password = errors.New("wrong PKCS#12 password")

// EncodePKCS12 bundles a private key, its certificate and the issuer chain
// (intermediates, then the root if the recipient should see it) into a
// PKCS#12 file protected by password. An empty password is allowed and
// means what it means to OpenSSL ("-passout pass:"): encrypted and MACed
// with the empty password, which every reader accepts, unlike a file with no
// encryption at all.
func EncodePKCS12(key crypto.Signer, cert *x509.Certificate, chain []*x509.Certificate, password string, format P12Format) ([]byte, error) {
	if key == nil {
		return nil, errors.New("PKCS#12: no private key to bundle")
	}
	if cert == nil {
		return nil, errors.New("PKCS#12: no certificate to bundle")
	}
	// OpenSSL 1.x's own legacy output uses 2048 iterations for the MAC key
	// as well; the library's LegacyDES uses 1, needlessly weak.
	enc := pkcs12.LegacyDES.WithIterations(2048)
	switch format {
	case "", P12Legacy:
	case P12Modern:
		enc = pkcs12.Modern2023
	default:
		return nil, fmt.Errorf("unknown PKCS#12 format %q: want legacy or modern", string(format))
	}
	der, err := enc.Encode(key, cert, chain, password)
	if err != nil {
		return nil, fmt.Errorf("encode PKCS#12: %w", err)
	}
	return der, nil
}

// DecodePKCS12 reads a PKCS#12 file holding one key and its certificates, the
// leaf first. A wrong password is an error wrapping ErrP12Password. A file
// holding only certificates (a Java trust store) is read too, with a nil key.
func DecodePKCS12(data []byte, password string) (key crypto.PrivateKey, leaf *x509.Certificate, chain []*x509.Certificate, err error) {
	key, leaf, chain, err = pkcs12.DecodeChain(data, password)
	if err == nil {
		return key, leaf, chain, nil
	}
	if errors.Is(err, pkcs12.ErrIncorrectPassword) || errors.Is(err, pkcs12.ErrDecryption) {
		return nil, nil, nil, fmt.Errorf("PKCS#12: %w", ErrP12Password)
	}
	if certs, terr := pkcs12.DecodeTrustStore(data, password); terr == nil && len(certs) > 0 {
		return nil, certs[0], certs[1:], nil
	}
	return nil, nil, nil, fmt.Errorf("PKCS#12: %w", err)
}
