package revocation

import (
	"errors"
	"fmt"
)

// ErrStale is wrapped by an UnreachableError when a source answered, with a
// valid signature, but its answer is out of date (nextUpdate in the past) or
// not yet valid (thisUpdate in the future) and does not revoke the
// certificate. Such an answer proves nothing about the present, so it is
// treated like no answer at all: soft-fail ignores it, hard-fail fails.
var ErrStale = errors.New("answer is out of date")

// ErrUnknownCertificate is wrapped by an UnreachableError when an OCSP
// responder answered, validly signed, that it does not know the certificate
// (status "unknown", RFC 6960 section 2.2) and no other source decided.
var ErrUnknownCertificate = errors.New("the responder does not know the certificate (status unknown)")

// UnreachableError means a revocation source could not give a usable, current
// answer: the connection failed or timed out, the server answered with an
// HTTP or OCSP error (tryLater, internalError), its answer was stale
// (errors.Is(err, ErrStale)) or "unknown" (errors.Is(err,
// ErrUnknownCertificate)). This is the error a soft-fail caller ignores and
// a hard-fail caller fails on.
type UnreachableError struct {
	Source string // SourceOCSP, SourceCRL, SourceCRLFile or SourceOCSPStaple
	URL    string // the responder or distribution point; empty for the staple and CRL files
	Err    error
}

func (e *UnreachableError) Error() string {
	where := e.Source
	if e.URL != "" {
		where += " " + e.URL
	}
	return fmt.Sprintf("revocation: %s: no usable answer: %v", where, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// InvalidResponseError means a source answered with something that cannot be
// trusted: a malformed OCSP response or CRL, a signature that does not verify
// against the issuer (or a delegated OCSP signer it certified), a response
// for another certificate. It is never read as "good"; callers fail on it in
// both soft-fail and hard-fail modes, since an attacker able to forge it is
// also able to hide a revocation.
type InvalidResponseError struct {
	Source string
	URL    string
	Err    error
}

func (e *InvalidResponseError) Error() string {
	where := e.Source
	if e.URL != "" {
		where += " " + e.URL
	}
	return fmt.Sprintf("revocation: %s: invalid answer: %v", where, e.Err)
}

func (e *InvalidResponseError) Unwrap() error { return e.Err }
