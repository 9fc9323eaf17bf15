package revocation

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"
)

// verdict is what one source said, before the sources are combined.
type verdict struct {
	res   Result
	stale bool // the answer is outside its validity window
}

// verifyOCSP parses an OCSP response for leaf and checks everything RFC 6960
// section 3.2 asks of a client: the signature is the issuer's or that of a
// delegated responder the issuer certified for OCSP signing, the response is
// about this very certificate (serial and issuer hashes), and its times.
func verifyOCSP(der []byte, leaf, issuer *x509.Certificate, now time.Time, skew time.Duration) (verdict, error) {
	resp, err := ocsp.ParseResponseForCert(der, leaf, issuer)
	if err != nil {
		var re ocsp.ResponseError
		if errors.As(err, &re) {
			// The responder answered with an error status (tryLater,
			// internalError, unauthorized...): no answer about the
			// certificate, the same as no answer at all.
			return verdict{}, &UnreachableError{Err: fmt.Errorf("responder error status %q", ocspStatusName(re.Status))}
		}
		if strings.HasPrefix(err.Error(), "bad OCSP signature") || strings.HasPrefix(err.Error(), "bad signature on embedded certificate") {
			return verdict{}, &InvalidResponseError{Err: fmt.Errorf("OCSP response rejected: not signed by issuer %q nor by a responder it certified: %w", issuer.Subject.String(), err)}
		}
		return verdict{}, &InvalidResponseError{Err: fmt.Errorf("OCSP response rejected: %w", err)}
	}
	if resp.Certificate != nil && !resp.Certificate.Equal(issuer) {
		// ParseResponseForCert checked that the issuer signed this
		// certificate; RFC 6960 section 4.2.2.2 also requires the
		// id-kp-OCSPSigning usage, or any certificate of the CA could
		// vouch for any other.
		if err := checkDelegate(resp.Certificate, issuer); err != nil {
			return verdict{}, &InvalidResponseError{Err: fmt.Errorf("OCSP response rejected: %w", err)}
		}
		if now.Before(resp.Certificate.NotBefore) || now.After(resp.Certificate.NotAfter) {
			return verdict{}, &InvalidResponseError{Err: fmt.Errorf("OCSP response rejected: delegated responder certificate %q is outside its validity period", resp.Certificate.Subject.String())}
		}
	}
	if err := checkCertID(der, leaf.SerialNumber, resp.IssuerHash, issuer); err != nil {
		return verdict{}, &InvalidResponseError{Err: fmt.Errorf("OCSP response rejected: %w", err)}
	}
	v := verdict{res: Result{ThisUpdate: resp.ThisUpdate, NextUpdate: resp.NextUpdate}}
	switch resp.Status {
	case ocsp.Good:
		v.res.Status = Good
	case ocsp.Revoked:
		v.res.Status = Revoked
		v.res.RevokedAt = resp.RevokedAt
		v.res.Reason = Reason(resp.RevocationReason)
	default:
		v.res.Status = Unknown
	}
	v.stale = outsideWindow(resp.ThisUpdate, resp.NextUpdate, now, skew)
	return v, nil
}

// outsideWindow reports whether now is outside [thisUpdate, nextUpdate],
// with skew allowed on both sides. A missing nextUpdate means "newer
// information is always available" (RFC 6960 section 4.2.2.1); such an answer
// is accepted for a day, the usual lifetime of CRLs and responses.
func outsideWindow(thisUpdate, nextUpdate, now time.Time, skew time.Duration) bool {
	if now.Add(skew).Before(thisUpdate) {
		return true
	}
	if nextUpdate.IsZero() {
		nextUpdate = thisUpdate.Add(24 * time.Hour)
	}
	return now.Add(-skew).After(nextUpdate)
}

func ocspStatusName(s ocsp.ResponseStatus) string {
	switch s {
	case ocsp.Malformed:
		return "malformedRequest"
	case ocsp.InternalError:
		return "internalError"
	case ocsp.TryLater:
		return "tryLater"
	case ocsp.SignatureRequired:
		return "sigRequired"
	case ocsp.Unauthorized:
		return "unauthorized"
	}
	return fmt.Sprintf("status %d", int(s))
}

// The response structures of RFC 6960 section 4.2.1, as far as needed to
// read the CertID of each single response, which x/crypto/ocsp does not
// expose (it matches on the serial number only). encoding/asn1 ignores the
// trailing fields of a SEQUENCE that a struct leaves out.
type rawResponse struct {
	Status   asn1.Enumerated
	Response struct {
		ResponseType asn1.ObjectIdentifier
		Response     []byte
	} `asn1:"explicit,tag:0,optional"`
}

type rawBasicResponse struct {
	TBSResponseData struct {
		Raw            asn1.RawContent
		Version        int `asn1:"optional,default:0,explicit,tag:0"`
		RawResponderID asn1.RawValue
		ProducedAt     time.Time `asn1:"generalized"`
		Responses      []struct {
			CertID struct {
				HashAlgorithm pkix.AlgorithmIdentifier
				NameHash      []byte
				IssuerKeyHash []byte
				SerialNumber  *big.Int
			}
		}
	}
}

// checkCertID verifies that the single response for serial names the issuer
// by its name and key hashes, so that a response the issuer's key signed for
// a certificate of another CA sharing the serial is not taken for ours.
func checkCertID(der []byte, serial *big.Int, h crypto.Hash, issuer *x509.Certificate) error {
	var outer rawResponse
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		return fmt.Errorf("parse response: %w", err)
	}
	var basic rawBasicResponse
	if _, err := asn1.Unmarshal(outer.Response.Response, &basic); err != nil {
		return fmt.Errorf("parse basic response: %w", err)
	}
	hashes, err := computeIssuerHashes(issuer)
	if err != nil {
		return err
	}
	want, ok := hashes[h]
	if !ok {
		return fmt.Errorf("unsupported CertID hash %v", h)
	}
	for _, sr := range basic.TBSResponseData.Responses {
		id := sr.CertID
		if id.SerialNumber == nil || id.SerialNumber.Cmp(serial) != 0 {
			continue
		}
		if bytes.Equal(id.NameHash, want.name) && bytes.Equal(id.IssuerKeyHash, want.key) {
			return nil
		}
	}
	return fmt.Errorf("the response for serial %x does not name issuer %q", serial, issuer.Subject.String())
}

// crlFor reports whether crl is a complete CRL of issuer: same name, same key
// identifier when both are known, and not a delta CRL (which lists only
// changes and proves nothing alone).
func crlFor(crl *x509.RevocationList, issuer *x509.Certificate) bool {
	return crlMismatch(crl, issuer) == ""
}

// crlMismatch says why crl is not a complete CRL of issuer, or "" if it is.
func crlMismatch(crl *x509.RevocationList, issuer *x509.Certificate) string {
	if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) {
		return fmt.Sprintf("the CRL is issued by %q, not by the certificate's issuer %q", crl.Issuer.String(), issuer.Subject.String())
	}
	if len(crl.AuthorityKeyId) > 0 && len(issuer.SubjectKeyId) > 0 && !bytes.Equal(crl.AuthorityKeyId, issuer.SubjectKeyId) {
		return fmt.Sprintf("the CRL is signed by another key of %q (authority key identifier %x, issuer key %x)", issuer.Subject.String(), crl.AuthorityKeyId, issuer.SubjectKeyId)
	}
	for _, ext := range crl.Extensions {
		if ext.Id.Equal(oidDeltaCRLIndicator) {
			return "the CRL is a delta CRL, which cannot be used alone"
		}
	}
	return ""
}

var oidDeltaCRLIndicator = asn1.ObjectIdentifier{2, 5, 29, 27}

// verifyCRL checks the CRL's signature against issuer, unless signed says
// it was checked already with this issuer's key, and looks the leaf up.
func verifyCRL(crl *x509.RevocationList, leaf, issuer *x509.Certificate, signed bool, now time.Time, skew time.Duration) (verdict, error) {
	if !signed {
		if err := crl.CheckSignatureFrom(issuer); err != nil {
			return verdict{}, &InvalidResponseError{Err: fmt.Errorf("CRL of %q rejected: %w", issuer.Subject.String(), err)}
		}
	}
	v := verdict{res: Result{Status: Good, ThisUpdate: crl.ThisUpdate, NextUpdate: crl.NextUpdate}}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber == nil || e.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
			continue
		}
		if Reason(e.ReasonCode) == ReasonRemoveFromCRL {
			continue // only meaningful in delta CRLs
		}
		v.res.Status = Revoked
		v.res.RevokedAt = e.RevocationTime
		v.res.Reason = Reason(e.ReasonCode)
		break
	}
	v.stale = outsideWindow(crl.ThisUpdate, crl.NextUpdate, now, skew)
	return v, nil
}

// usable tells whether a verified answer settles the question: a current
// answer always does; a stale one only when it revokes for good, since a
// revocation is final (RFC 5280 section 3.3) except for certificateHold.
func (v verdict) usable() bool {
	if !v.stale {
		return true
	}
	return v.res.Status == Revoked && v.res.Reason != ReasonCertificateHold
}
