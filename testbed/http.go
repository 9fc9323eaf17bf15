package testbed

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/passerelle/passerelle/certs"
)

// contentTypeCert is the media type of a DER certificate (RFC 2585 section
// 4.2), what an AIA caIssuers URL serves.
const contentTypeCert = "application/pkix-cert"

// httpHandler serves what the certificates point at, under stable paths:
//
//	/ca.pem                 the testbed root, PEM (to download the trust anchor)
//	/ca/<issuer>.cer        an issuer certificate, DER (AIA caIssuers)
//	/crl/<issuer>.crl       the issuer's CRL, DER (CRL distribution point)
//	/ocsp/<issuer>          the issuer's OCSP responder, GET and POST (RFC 6960)
//	/manifest.json          the manifest
//	/                       the dashboard for browsers (browser.go)
//
// where <issuer> is "root", "intermediate", or the name of an endpoint whose
// leaf has an issuer of its own (name-constraints). The port is a plain
// secure.Server like the others (Serve): it shares their connection limit
// and handshake timeout (which bounds a request's headers), and hands each
// connection to net/http through web.ConnServer.
func (t *Testbed) httpHandler() http.Handler {
	mux := http.NewServeMux()
	for _, iss := range t.issuers() {
		der := iss.cert.Raw
		mux.HandleFunc("GET /ca/"+iss.name+".cer", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", contentTypeCert)
			w.Header().Set("Content-Length", strconv.Itoa(len(der)))
			_, _ = w.Write(der)
		})
		mux.Handle("/crl/"+iss.name+".crl", t.withClientSync(iss, iss.crl))
		mux.Handle("/ocsp/"+iss.name, t.withClientSync(iss, iss.responder))
		mux.Handle("/ocsp/"+iss.name+"/", t.withClientSync(iss, iss.responder))
	}
	mux.HandleFunc("GET /{$}", t.serveDashboard)
	mux.HandleFunc("GET /ca.pem", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(certs.MarshalCertsPEM(t.root.cert))
	})
	mux.HandleFunc("GET /manifest.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(t.Endpoints())
	})
	return mux
}

// withClientSync picks up client certificates revoked by "testbed
// client-certs" since the last request, before the root's CRL or OCSP
// responder answers.
func (t *Testbed) withClientSync(iss *issuer, h http.Handler) http.Handler {
	if iss != t.root {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := t.syncRevokedClients(); err != nil {
			t.log.Warn("revoked client list unreadable", "error", err)
		}
		h.ServeHTTP(w, r)
	})
}
