// Package testbed runs TLS endpoints that each present one certificate
// defect, so that a client developer can check that a TLS client (AIR
// SecureSocket, OpenFL, Go, Python, openssl) reports the right status in AIR's
// vocabulary (see package secure).
//
// # Model
//
// A Testbed is built by New and run by Serve. New loads (or creates) the
// testbed root from Config.Dir, binds every port, then makes every other
// certificate afresh with dates relative to now, so nothing ever goes stale
// while the root, which clients may have installed, stays the same:
//
//	base-port      HTTP: /ca/<issuer>.cer (AIA), /crl/<issuer>.crl, /ocsp/<issuer>,
//	               /ca.pem, /manifest.json, and / the dashboard for browsers
//	base-port+1    the SNI port: the server name <endpoint>.testbed.localhost
//	               picks the endpoint (no or unknown name: handshake refused)
//	base-port+2+i  endpoint i of plans, whatever name the client asks for
//
// Each endpoint is a plan (endpoints.go): a name, the status a correct client
// reports, the OpenSSL verify code it produces, and a builder method
// (defects.go) that issues its certificate. A server-certificate endpoint
// speaks the echo service of seed 001 (the OpenFL/AIR socket chapter) after the handshake ("Connected.", then
// "Echo -- " and each chunk). A client-certificate endpoint (client_cert in
// the manifest) asks for a certificate, has secure.Server judge it for the
// client role against the testbed root and its CRL, adds an allow-list
// (secure/allow),
// sends the verdict as its first XMLSocket frame (verdictMessage), then
// echoes each frame. Two endpoints speak no TLS at all (plain-text answers
// in clear, silent never answers) for the invalid and unknown outcomes of a
// handshake that does not happen.
//
// A client that negotiates ALPN http/1.1 (a browser) gets, from every TLS
// endpoint, a page naming it and its defect instead of its service
// (browser.go, served by web's ConnServer); the dashboard's script
// fetches each endpoint's page from the visitor's browser and shows where
// the browser accepted what it should have refused, or the reverse.
//
// Some endpoints send chains that hold a valid path in a shape clients get
// wrong (cross-signed, out of order, extras, a namesake issuer), or test
// name constraints (paths.go). Where OpenSSL 3.0 disagrees with the
// expected status, the plan records what it says (osslStatus, the
// manifest's openssl_status).
//
// Revocation is real: every issuer has a certs/revocation List with an OCSP
// responder and a CRL publisher on the HTTP server; the revoked endpoint's
// server staples the responder's answer. IssueClientCerts makes one client
// certificate per status under the same root and records the revoked one's
// serial in Config.Dir, which a running testbed rereads.
//
// The testbed sits above both the TLS layer and the wire formats: it uses
// secure for its listeners and judgements, protocol/* for the services its
// endpoints speak, and package certs for the PKI primitives (key types and
// generation, serials, PEM, atomic file writes with the folder synced,
// PKCS#12), so that what it writes is written as passerelle's own
// certificates are.
//
// # Where to start reading
//
// endpoints.go (the plan table and the manifest entry), defects.go and
// paths.go (how each defect is made), testbed.go (New), serve.go (Serve: a secure.Server per
// port, which owns the accept loop, handshake and client-certificate
// judgement, one connection limit shared by every port, the policy-file
// request answered before the handshake, and the services after it),
// verdict.go (client certificates), clientcerts.go, http.go, browser.go.
// The tests in testbed_test.go run the manifest through three independent
// clients: secure.Dial, openssl s_client and testdata/pyclient.py;
// browser_test.go runs the dashboard in headless Chromium.
package testbed
