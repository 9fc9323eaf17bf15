// Package revocation publishes and checks certificate revocation: an OCSP
// responder (RFC 6960), a CRL publisher (RFC 5280 section 5), a helper that
// fetches a server's own OCSP staple, and the client-side check that turns
// stapled responses, CRL files, OCSP responders and CRL distribution points
// into one answer: good, revoked or unknown.
//
// # Serving side
//
// A List holds the revoked serial numbers of one CA and can change at run
// time (Revoke, Unrevoke): start there (NewList). A Responder (NewResponder)
// answers OCSP requests for the CA from the list, signed by the CA or by a
// delegated responder certificate; a CRLPublisher (NewCRLPublisher) keeps a
// signed CRL of the same list, re-signed when the list changes. Both are
// http.Handlers, mounted wherever the URLs put into certificates point (the
// testbed serves one pair per issuer).
//
// # Checking side
//
// Check is the entry point. It consults, in order, the stapled OCSP response,
// the CRLs the user gave, the OCSP responders named by the certificate, then
// its CRL distribution points, and stops at the first verified answer that
// decides. Everything it reads is verified against the issuer: a bad
// signature is an *InvalidResponseError, never "good". A source that cannot
// be reached, whose answer is stale, or that does not know the certificate
// yields an *UnreachableError: the error a soft-fail caller ignores and a
// hard-fail caller fails on. Options.Cache (NewCache) keeps fetched answers
// for the next checks, until their nextUpdate or HTTP max-age, and makes
// checks running at once share one request per URL; secure gives each
// Server one.
//
// Stale answers: a CRL or OCSP response past its nextUpdate (plus a clock
// skew allowance) still proves a revocation, since revocation is final
// (RFC 5280 section 3.3), except for certificateHold; it never proves that a
// certificate is good.
//
// # Stapling
//
// Staple fetches one OCSP response for a server's own certificate; Stapler
// (NewStapler, then Run) keeps it fresh in the background for a
// long-running server, and is what certs uses for files-mode certificates.
//
// Files: list.go (the list and reason codes), responder.go, crl.go (the
// publisher and CRL file loading), check.go (Check and its options),
// verify.go (signature and freshness rules), fetch.go (HTTP and Staple),
// stapler.go, cache.go (answers kept across checks), errors.go.
package revocation
