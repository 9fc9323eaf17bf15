// Package testpki builds throw-away certificate authorities and certificates for
// tests. Everything is made at test time, with dates relative to now, so no
// fixture ever expires.
//
// Start with NewRoot; derive intermediates with (*CA).Intermediate and end
// certificates with (*CA).Leaf. LeafOptions and CAOptions expose the fields the
// certificate-defect tests need to bend (dates, usages, basic constraints,
// revocation URLs).
package testpki
