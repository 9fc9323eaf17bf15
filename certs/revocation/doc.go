// Package revocation publishes and checks certificate revocation: an OCSP
// responder (RFC 6960), a CRL publisher (RFC 5280 section 5), a helper that
// fetches a server's own OCSP staple, and the client-side check that turns
// stapled responses, CRL files, OCSP responders and CRL distribution points
// into one answer: good, revoked or unknown.
//
// # Serving side
//
// A List holds the revoked serial numbers of one CA and can change at run
// time (Revoke, Unrevoke). A Responder answers OCSP requests for the CA from
// the list, signed by the CA or by a delegated responder certificate; a
// CRLPublisher keeps a signed CRL of the same list, re-signed when the list
// changes. Service bundles the three behind one http.Handler: start there
// (NewService, then Service.URLs to get the URLs to put into certificates).
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
// hard-fail caller fails on (SoftFailable tells them apart). Options.Cache
// keeps fetched answers for the next checks.
//
// Stale answers: a CRL or OCSP response past its nextUpdate (plus a clock
// skew allowance) still proves a revocation, since revocation is final
// (RFC 5280 section 3.3), except for certificateHold; it never proves that a
// certificate is good.
//
// # Stapling
//
// Staple fetches one OCSP response for a server's own certificate; Stapler
// keeps it fresh in the background for a long-running server.
//
// Files: list.go (the list and reason codes), responder.go, crl.go (the
// publisher and CRL file loading), service.go, check.go (Check and its
// options), verify.go (signature and freshness rules), fetch.go (HTTP and
// Staple), stapler.go, cache.go (answers kept across checks), errors.go.
package revocation
