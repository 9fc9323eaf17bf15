package revocation

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// Media types of RFC 6960 appendix C.
const (
	ContentTypeOCSPRequest  = "application/ocsp-request"
	ContentTypeOCSPResponse = "application/ocsp-response"
)

// maxOCSPRequest bounds a POSTed request body. A request for one certificate
// is about 80 bytes; even a signed request with a certificate chain stays far
// below this.
const maxOCSPRequest = 16 << 10

// ResponderConfig describes an OCSP responder for one issuer.
type ResponderConfig struct {
	// Issuer is the CA certificate whose certificates the responder speaks
	// for. Required.
	Issuer *x509.Certificate
	// Signer signs the responses: the issuer's own key, or the key of
	// ResponderCert. Required.
	Signer crypto.Signer
	// ResponderCert, when set, is a delegated responder certificate (RFC 6960
	// section 4.2.2.2): issued by Issuer, carrying the id-kp-OCSPSigning
	// extended key usage, with Signer's public key. It is sent in every
	// response so that clients can check the delegation. Nil means Issuer
	// signs directly.
	ResponderCert *x509.Certificate
	// List holds the revoked serials. Required; changes are visible to the
	// next request.
	List *List
	// Known, when set, tells whether a serial was issued by Issuer. Serials
	// for which it returns false are answered "unknown". Nil means every
	// serial not in List is "good", the usual behaviour of a CA that does not
	// keep an issuance log.
	Known func(serial *big.Int) bool
	// Validity is the span from thisUpdate to nextUpdate of each response.
	// Default 1h.
	Validity time.Duration
	// Backdate moves thisUpdate into the past so that clients whose clocks
	// lag a little still accept a fresh response. Default 1m.
	Backdate time.Duration
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// CacheSize bounds the number of signed answers kept for reuse, so that
	// requests for ever new serials cannot grow memory. Default 10000.
	CacheSize int
	// Logger receives one debug line per answered request. Default: discard.
	Logger *slog.Logger
}

var _ http.Handler = (*Responder)(nil)

// Responder is an OCSP responder (RFC 6960) for one issuer, serving both the
// GET and POST forms of appendix A.1. It is an http.Handler; mount it at the
// URL put in the certificates' authorityInfoAccess extension.
//
// Signed answers are cached per serial and hash algorithm until the list
// changes or half of Validity has passed, so a busy responder signs rarely.
type Responder struct {
	cfg     ResponderConfig
	signer  *x509.Certificate // the certificate whose name is the ResponderID
	hashes  map[crypto.Hash]issuerHashes
	log     *slog.Logger
	mu      sync.Mutex
	cache   map[cacheKey]cachedResponse
	version uint64 // list version the cache was filled at
}

type issuerHashes struct{ name, key []byte }

type cacheKey struct {
	serial string
	hash   crypto.Hash
}

type cachedResponse struct {
	der        []byte
	thisUpdate time.Time
	nextUpdate time.Time
	status     Status
}

// NewResponder checks cfg and returns a responder.
func NewResponder(cfg ResponderConfig) (*Responder, error) {
	if cfg.Issuer == nil {
		return nil, errors.New("revocation: responder: no issuer certificate")
	}
	if cfg.Signer == nil {
		return nil, errors.New("revocation: responder: no signing key")
	}
	if cfg.List == nil {
		return nil, errors.New("revocation: responder: no revocation list")
	}
	if cfg.Validity <= 0 {
		cfg.Validity = time.Hour
	}
	if cfg.Backdate < 0 {
		return nil, fmt.Errorf("revocation: responder: negative backdate %v", cfg.Backdate)
	}
	if cfg.Backdate == 0 {
		cfg.Backdate = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 10000
	}
	r := &Responder{cfg: cfg, signer: cfg.Issuer, log: loggerOrDiscard(cfg.Logger), cache: make(map[cacheKey]cachedResponse)}
	if cfg.ResponderCert != nil {
		if err := checkDelegate(cfg.ResponderCert, cfg.Issuer); err != nil {
			return nil, fmt.Errorf("revocation: responder: %w", err)
		}
		if now := cfg.Now(); now.Before(cfg.ResponderCert.NotBefore) || now.After(cfg.ResponderCert.NotAfter) {
			return nil, fmt.Errorf("revocation: responder: delegated responder certificate %q is valid only from %s to %s", cfg.ResponderCert.Subject.String(), fmtTime(cfg.ResponderCert.NotBefore), fmtTime(cfg.ResponderCert.NotAfter))
		}
		r.signer = cfg.ResponderCert
	}
	if !publicKeysEqual(r.signer.PublicKey, cfg.Signer.Public()) {
		return nil, fmt.Errorf("revocation: responder: the signing key does not match the public key of %q", r.signer.Subject.String())
	}
	hashes, err := computeIssuerHashes(cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("revocation: responder: %w", err)
	}
	r.hashes = hashes
	return r, nil
}

// checkDelegate verifies that cert may sign OCSP responses for issuer
// (RFC 6960 section 4.2.2.2): issued by it and carrying id-kp-OCSPSigning.
func checkDelegate(cert, issuer *x509.Certificate) error {
	if cert.Equal(issuer) {
		return nil
	}
	if err := cert.CheckSignatureFrom(issuer); err != nil {
		return fmt.Errorf("delegated responder certificate %q is not signed by the issuer %q: %w", cert.Subject.String(), issuer.Subject.String(), err)
	}
	for _, u := range cert.ExtKeyUsage {
		if u == x509.ExtKeyUsageOCSPSigning {
			return nil
		}
	}
	return fmt.Errorf("delegated responder certificate %q lacks the OCSPSigning extended key usage", cert.Subject.String())
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
}

// computeIssuerHashes computes the issuerNameHash and issuerKeyHash of a
// CertID (RFC 6960 section 4.1.1) for every hash algorithm x/crypto/ocsp
// parses, so that a request matches whichever one the client chose (openssl
// uses SHA-1 by default, some clients SHA-256).
func computeIssuerHashes(issuer *x509.Certificate) (map[crypto.Hash]issuerHashes, error) {
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, fmt.Errorf("parse issuer public key: %w", err)
	}
	out := make(map[crypto.Hash]issuerHashes)
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		if !h.Available() {
			continue
		}
		nh := h.New()
		nh.Write(issuer.RawSubject)
		kh := h.New()
		kh.Write(spki.PublicKey.RightAlign())
		out[h] = issuerHashes{name: nh.Sum(nil), key: kh.Sum(nil)}
	}
	return out, nil
}

// ServeHTTP answers an OCSP request sent by GET (the base64 request, URL
// escaped, as the last part of the path) or POST (the DER request as the
// body), per RFC 6960 appendix A.1.
func (r *Responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var (
		der []byte
		err error
	)
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		der, err = requestFromPath(req.URL)
	case http.MethodPost:
		der, err = io.ReadAll(io.LimitReader(req.Body, maxOCSPRequest+1))
		if err == nil && len(der) > maxOCSPRequest {
			err = fmt.Errorf("request body over %d bytes", maxOCSPRequest)
		}
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "OCSP requests are sent with GET or POST (RFC 6960 appendix A)", http.StatusMethodNotAllowed)
		return
	}
	if err != nil {
		r.log.Debug("ocsp malformed request", "remote_addr", req.RemoteAddr, "error", err)
		writeOCSP(w, req, http.StatusBadRequest, ocsp.MalformedRequestErrorResponse, answerInfo{})
		return
	}
	resp, info, err := r.respond(der)
	if err != nil {
		r.log.Debug("ocsp refused request", "remote_addr", req.RemoteAddr, "error", err)
		var re *requestError
		if errors.As(err, &re) {
			writeOCSP(w, req, re.httpStatus, re.body, answerInfo{})
			return
		}
		writeOCSP(w, req, http.StatusInternalServerError, ocsp.InternalErrorErrorResponse, answerInfo{})
		return
	}
	r.log.Debug("ocsp answered", "remote_addr", req.RemoteAddr, "serial", info.serial, "status", string(info.status))
	if req.Method == http.MethodPost {
		// Only GET answers are cacheable (RFC 5019 section 6.2).
		info = answerInfo{}
	}
	writeOCSP(w, req, http.StatusOK, resp, info)
}

func writeOCSP(w http.ResponseWriter, req *http.Request, code int, body []byte, info answerInfo) {
	h := w.Header()
	h.Set("Content-Type", ContentTypeOCSPResponse)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if !info.nextUpdate.IsZero() {
		// RFC 5019 section 6.2: caching headers derived from the response.
		// max-age stops at nextUpdate, counted from the responder's clock.
		h.Set("Last-Modified", info.thisUpdate.UTC().Format(http.TimeFormat))
		h.Set("Expires", info.nextUpdate.UTC().Format(http.TimeFormat))
		if age := int(info.nextUpdate.Sub(info.now).Seconds()); age > 0 {
			h.Set("Cache-Control", "max-age="+strconv.Itoa(age)+", public, no-transform, must-revalidate")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
	} else {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(code)
	if req.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// requestFromPath extracts the DER request of a GET. The request is the
// base64 of the DER, URL-escaped, appended to the responder URL. Base64 may
// itself contain '/', and the responder may be mounted under any prefix, so
// each suffix of the path that starts after a '/' is tried, longest first.
func requestFromPath(u *url.URL) ([]byte, error) {
	p := u.EscapedPath()
	if p == "" || p == "/" {
		return nil, errors.New("GET without a request in the path")
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		cand, err := url.PathUnescape(p[i+1:])
		if err != nil || cand == "" {
			continue
		}
		// Some clients send '+' unescaped, which proxies then turn into a space.
		cand = strings.ReplaceAll(cand, " ", "+")
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			der, err := enc.DecodeString(cand)
			if err != nil {
				continue
			}
			if _, err := ocsp.ParseRequest(der); err == nil {
				return der, nil
			}
		}
	}
	return nil, fmt.Errorf("no base64 OCSP request in path %q", p)
}

// requestError is a refused request, answered with an OCSP error status.
type requestError struct {
	httpStatus int
	body       []byte
	err        error
}

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

type answerInfo struct {
	serial                      string
	status                      Status
	thisUpdate, nextUpdate, now time.Time
}

// Respond answers one DER-encoded OCSP request with a DER-encoded OCSP
// response, as the HTTP handler does. Requests that cannot be parsed get a
// malformedRequest response and those for another issuer an unauthorized
// one (RFC 6960 section 2.3), together with a non-nil error.
func (r *Responder) Respond(request []byte) ([]byte, error) {
	resp, _, err := r.respond(request)
	var re *requestError
	if errors.As(err, &re) {
		return re.body, err
	}
	return resp, err
}

func (r *Responder) respond(der []byte) ([]byte, answerInfo, error) {
	req, err := ocsp.ParseRequest(der)
	if err != nil {
		return nil, answerInfo{}, &requestError{http.StatusBadRequest, ocsp.MalformedRequestErrorResponse, fmt.Errorf("revocation: malformed OCSP request: %w", err)}
	}
	ih, ok := r.hashes[req.HashAlgorithm]
	if !ok {
		return nil, answerInfo{}, &requestError{http.StatusBadRequest, ocsp.MalformedRequestErrorResponse, fmt.Errorf("revocation: OCSP request uses unsupported hash %v", req.HashAlgorithm)}
	}
	if !bytes.Equal(ih.name, req.IssuerNameHash) || !bytes.Equal(ih.key, req.IssuerKeyHash) {
		// Not our issuer: the response could not carry the requester's
		// CertID under our signature, so answer "unauthorized" (RFC 6960
		// section 2.3, RFC 5019 section 2.2.3).
		return nil, answerInfo{}, &requestError{http.StatusOK, ocsp.UnauthorizedErrorResponse, fmt.Errorf("revocation: OCSP request for serial %x of another issuer", req.SerialNumber)}
	}
	resp, info, err := r.sign(req.SerialNumber, req.HashAlgorithm)
	return resp, info, err
}

// Response returns a signed OCSP response for serial, as a stapling server
// built on the same CA would staple it, without going through HTTP.
func (r *Responder) Response(serial *big.Int) ([]byte, error) {
	if serial == nil {
		return nil, errors.New("revocation: response: nil serial number")
	}
	resp, _, err := r.sign(serial, crypto.SHA1)
	return resp, err
}

func (r *Responder) sign(serial *big.Int, h crypto.Hash) ([]byte, answerInfo, error) {
	now := r.cfg.Now()
	key := cacheKey{serial.Text(16), h}
	version := r.cfg.List.Version()
	r.mu.Lock()
	if r.version != version {
		clear(r.cache)
		r.version = version
	}
	c, ok := r.cache[key]
	r.mu.Unlock()
	// Re-sign once half the validity is gone, so a cached answer always
	// leaves clients a comfortable margin before nextUpdate.
	if ok && now.Before(c.thisUpdate.Add(r.cfg.Backdate+r.cfg.Validity/2)) && !now.Before(c.thisUpdate) {
		return c.der, answerInfo{key.serial, c.status, c.thisUpdate, c.nextUpdate, now}, nil
	}

	thisUpdate := now.Add(-r.cfg.Backdate).UTC().Truncate(time.Second)
	tmpl := ocsp.Response{
		SerialNumber: serial,
		ThisUpdate:   thisUpdate,
		NextUpdate:   thisUpdate.Add(r.cfg.Validity),
		IssuerHash:   h,
		Status:       ocsp.Good,
	}
	status := Good
	if e, revoked := r.cfg.List.Lookup(serial); revoked {
		tmpl.Status = ocsp.Revoked
		tmpl.RevokedAt = e.RevokedAt
		tmpl.RevocationReason = int(e.Reason)
		status = Revoked
	} else if r.cfg.Known != nil && !r.cfg.Known(serial) {
		tmpl.Status = ocsp.Unknown
		status = Unknown
	}
	if r.cfg.ResponderCert != nil {
		tmpl.Certificate = r.cfg.ResponderCert
	}
	der, err := ocsp.CreateResponse(r.cfg.Issuer, r.signer, tmpl, r.cfg.Signer)
	if err != nil {
		return nil, answerInfo{}, fmt.Errorf("revocation: sign OCSP response for serial %x: %w", serial, err)
	}
	r.mu.Lock()
	if r.version == version {
		if _, ok := r.cache[key]; !ok && len(r.cache) >= r.cfg.CacheSize {
			// Full: drop an arbitrary answer (map order is random), which
			// costs one signature if it is asked for again.
			for k := range r.cache {
				delete(r.cache, k)
				break
			}
		}
		r.cache[key] = cachedResponse{der: der, thisUpdate: tmpl.ThisUpdate, nextUpdate: tmpl.NextUpdate, status: status}
	}
	r.mu.Unlock()
	return der, answerInfo{key.serial, status, tmpl.ThisUpdate, tmpl.NextUpdate, now}, nil
}

func loggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
