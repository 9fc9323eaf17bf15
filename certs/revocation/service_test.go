package revocation

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"time"
)

// Service is the tests' revocation service of one CA: a List with the OCSP
// Responder and the CRLPublisher answering from it, behind one
// http.Handler. The program serves these parts under its own paths (the
// testbed, one pair per issuer); tests want them in one piece.

// Paths under which a Service serves its responder and its CRL.
const (
	OCSPPath = "/ocsp"
	CRLPath  = "/crl"
)

// ServiceConfig describes a Service: the CA, an optional delegated OCSP
// responder, and the validity of what it signs.
type ServiceConfig struct {
	Issuer *x509.Certificate // required
	Signer crypto.Signer     // the issuer's key, required
	// List is shared by the responder and the CRL. Default: a new empty list.
	List *List
	// ResponderCert and ResponderKey, when set, make the OCSP responder sign
	// as a delegated responder instead of with the issuer's key.
	ResponderCert *x509.Certificate
	ResponderKey  crypto.Signer
	// Known: see ResponderConfig.Known.
	Known func(serial *big.Int) bool
	// OCSPValidity and CRLValidity default to 1h and 24h.
	OCSPValidity time.Duration
	CRLValidity  time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
}

// Service is a List, the OCSP Responder and the CRLPublisher answering from
// it, behind one http.Handler. The responder
// answers at OCSPPath (POST to it, or GET below it) and the CRL is at CRLPath
// (any path below it too, so "/crl/ca.crl" works). Put URLs(base) in the
// certificates the CA issues.
type Service struct {
	List      *List
	Responder *Responder
	CRL       *CRLPublisher
	log       *slog.Logger
}

// NewService builds the list, responder and CRL publisher of a CA.
func NewService(cfg ServiceConfig) (*Service, error) {
	list := cfg.List
	if list == nil {
		list = NewList()
	}
	if (cfg.ResponderCert == nil) != (cfg.ResponderKey == nil) {
		return nil, errors.New("revocation: service: a delegated responder needs both its certificate and its key")
	}
	rs := cfg.Signer
	if cfg.ResponderKey != nil {
		rs = cfg.ResponderKey
	}
	resp, err := NewResponder(ResponderConfig{
		Issuer: cfg.Issuer, Signer: rs, ResponderCert: cfg.ResponderCert, List: list,
		Known: cfg.Known, Validity: cfg.OCSPValidity, Now: cfg.Now, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	crl, err := NewCRLPublisher(CRLConfig{
		Issuer: cfg.Issuer, Signer: cfg.Signer, List: list,
		Validity: cfg.CRLValidity, Now: cfg.Now, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	return &Service{List: list, Responder: resp, CRL: crl, log: loggerOrDiscard(cfg.Logger)}, nil
}

// URLs returns the OCSP responder and CRL distribution point URLs of the
// service when it is served at base (for example an httptest server's URL),
// ready for a certificate's OCSPServer and CRLDistributionPoints fields.
func (s *Service) URLs(base string) (ocspURL, crlURL string) {
	base = strings.TrimRight(base, "/")
	return base + OCSPPath, base + CRLPath
}

// ServeHTTP routes OCSP requests to the responder and CRL downloads to the
// publisher. It does its own routing rather than use http.ServeMux, which
// would redirect GET requests whose base64 contains "//".
func (s *Service) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	p := req.URL.Path
	switch {
	case p == OCSPPath || strings.HasPrefix(p, OCSPPath+"/"):
		s.Responder.ServeHTTP(w, req)
	case p == CRLPath || strings.HasPrefix(p, CRLPath+"/") || strings.HasPrefix(p, CRLPath+"."):
		s.CRL.ServeHTTP(w, req)
	default:
		s.log.Debug("revocation service: unknown path", "remote_addr", req.RemoteAddr, "path", p)
		http.Error(w, fmt.Sprintf("not found: the OCSP responder is at %s and the CRL at %s", OCSPPath, CRLPath), http.StatusNotFound)
	}
}
