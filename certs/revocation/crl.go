package revocation

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// ContentTypeCRL is the media type of a DER CRL (RFC 5280 section 4.2.1.13,
// RFC 2585 section 4.1).
const ContentTypeCRL = "application/pkix-crl"

// CRLConfig describes a CRL publisher for one issuer.
type CRLConfig struct {
	// Issuer is the CA certificate that signs the CRL. It must be allowed to
	// sign CRLs (keyUsage cRLSign when the extension is present). Required.
	Issuer *x509.Certificate
	// Signer is the issuer's private key. Required.
	Signer crypto.Signer
	// List holds the revoked serials. Required.
	List *List
	// Validity is the span from thisUpdate to nextUpdate. Default 24h. The CRL
	// is re-signed when the list changes and once half of it has passed.
	Validity time.Duration
	// Backdate moves thisUpdate into the past for clients whose clocks lag.
	// Default 1m.
	Backdate time.Duration
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Logger receives a debug line per signed CRL. Default: discard.
	Logger *slog.Logger
}

var _ http.Handler = (*CRLPublisher)(nil)

// CRLPublisher keeps a signed CRL (RFC 5280 section 5) of one issuer in step
// with a List and serves it over HTTP, DER-encoded, as the certificates'
// cRLDistributionPoints URL expects (RFC 5280 section 4.2.1.13).
type CRLPublisher struct {
	cfg CRLConfig
	log *slog.Logger

	mu         sync.Mutex
	der        []byte
	version    uint64
	number     *big.Int
	thisUpdate time.Time
	nextUpdate time.Time
}

// NewCRLPublisher checks cfg, signs a first CRL and returns the publisher.
func NewCRLPublisher(cfg CRLConfig) (*CRLPublisher, error) {
	if cfg.Issuer == nil {
		return nil, errors.New("revocation: CRL publisher: no issuer certificate")
	}
	if cfg.Signer == nil {
		return nil, errors.New("revocation: CRL publisher: no signing key")
	}
	if cfg.List == nil {
		return nil, errors.New("revocation: CRL publisher: no revocation list")
	}
	if !publicKeysEqual(cfg.Issuer.PublicKey, cfg.Signer.Public()) {
		return nil, fmt.Errorf("revocation: CRL publisher: the signing key does not match the public key of %q", cfg.Issuer.Subject.String())
	}
	if cfg.Issuer.KeyUsage != 0 && cfg.Issuer.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return nil, fmt.Errorf("revocation: CRL publisher: issuer %q may not sign CRLs (no cRLSign key usage)", cfg.Issuer.Subject.String())
	}
	if cfg.Validity <= 0 {
		cfg.Validity = 24 * time.Hour
	}
	if cfg.Backdate < 0 {
		return nil, fmt.Errorf("revocation: CRL publisher: negative backdate %v", cfg.Backdate)
	}
	if cfg.Backdate == 0 {
		cfg.Backdate = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &CRLPublisher{cfg: cfg, log: loggerOrDiscard(cfg.Logger)}
	if _, err := p.CRL(); err != nil {
		return nil, err
	}
	return p, nil
}

// CRL returns the current DER-encoded CRL, signing a new one first if the
// list changed or half of the validity has passed.
func (p *CRLPublisher) CRL() ([]byte, error) {
	der, _, _, err := p.current()
	return der, err
}

func (p *CRLPublisher) current() ([]byte, time.Time, time.Time, error) {
	now := p.cfg.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	version := p.cfg.List.Version()
	if p.der != nil && version == p.version && now.Before(p.thisUpdate.Add(p.cfg.Backdate+p.cfg.Validity/2)) && !now.Before(p.thisUpdate) {
		return p.der, p.thisUpdate, p.nextUpdate, nil
	}
	entries, version := p.cfg.List.Entries()
	thisUpdate := now.Add(-p.cfg.Backdate).UTC().Truncate(time.Second)
	// The CRL number must grow with every CRL (RFC 5280 section 5.2.3),
	// also across restarts, so it starts from the clock in nanoseconds and
	// is bumped when two CRLs are signed within the same nanosecond.
	number := big.NewInt(now.UnixNano())
	if p.number != nil && number.Cmp(p.number) <= 0 {
		number = new(big.Int).Add(p.number, big.NewInt(1))
	}
	tmpl := &x509.RevocationList{
		Number:     number,
		ThisUpdate: thisUpdate,
		NextUpdate: thisUpdate.Add(p.cfg.Validity),
	}
	for _, e := range entries {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber:   e.Serial,
			RevocationTime: e.RevokedAt,
			ReasonCode:     int(e.Reason),
		})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, p.cfg.Issuer, p.cfg.Signer)
	if err != nil {
		return nil, time.Time{}, time.Time{}, fmt.Errorf("revocation: sign CRL of %q: %w", p.cfg.Issuer.Subject.String(), err)
	}
	p.der, p.version, p.number = der, version, number
	p.thisUpdate, p.nextUpdate = tmpl.ThisUpdate, tmpl.NextUpdate
	p.log.Debug("crl signed", "issuer", p.cfg.Issuer.Subject.String(), "crl_number", number.String(), "revoked", len(entries))
	return der, p.thisUpdate, p.nextUpdate, nil
}

// ServeHTTP serves the current CRL, DER-encoded, on GET and HEAD.
func (p *CRLPublisher) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "a CRL is fetched with GET", http.StatusMethodNotAllowed)
		return
	}
	der, thisUpdate, nextUpdate, err := p.current()
	if err != nil {
		p.log.Error("crl signing failed", "remote_addr", req.RemoteAddr, "error", err)
		http.Error(w, "CRL unavailable", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ContentTypeCRL)
	h.Set("Content-Length", strconv.Itoa(len(der)))
	h.Set("Last-Modified", thisUpdate.Format(http.TimeFormat))
	h.Set("Expires", nextUpdate.Format(http.TimeFormat))
	// The list may change at any moment; let caches keep the CRL a short
	// while only, and never past nextUpdate.
	h.Set("Cache-Control", "max-age=60, must-revalidate")
	w.WriteHeader(http.StatusOK)
	if req.Method == http.MethodGet {
		_, _ = w.Write(der)
	}
}

// LoadCRLFile reads the CRLs in a file: one DER CRL, or any number of PEM
// blocks of type "X509 CRL" (openssl's format, possibly one per CA of a
// chain). Signatures are not checked here; Check verifies each CRL against
// the issuer it is used for.
func LoadCRLFile(path string) ([]*x509.RevocationList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("revocation: read CRL file: %w", err)
	}
	crls, err := ParseCRLs(data)
	if err != nil {
		return nil, fmt.Errorf("revocation: CRL file %s: %w", path, err)
	}
	return crls, nil
}

// ParseCRLs parses one DER CRL or a series of PEM "X509 CRL" blocks.
func ParseCRLs(data []byte) ([]*x509.RevocationList, error) {
	if len(data) == 0 {
		return nil, errors.New("empty file, expected a CRL in DER or PEM form")
	}
	if data[0] == 0x30 { // an ASN.1 SEQUENCE: DER
		crl, err := x509.ParseRevocationList(data)
		if err != nil {
			if _, cerr := x509.ParseCertificate(data); cerr == nil {
				return nil, errors.New("this is a DER certificate, not a CRL")
			}
			return nil, fmt.Errorf("not a valid DER CRL: %w", err)
		}
		return []*x509.RevocationList{crl}, nil
	}
	var (
		out    []*x509.RevocationList
		others []string
	)
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "X509 CRL" {
			others = append(others, block.Type)
			continue
		}
		crl, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM CRL number %d: %w", len(out)+1, err)
		}
		out = append(out, crl)
	}
	if len(out) == 0 {
		if len(others) > 0 {
			return nil, fmt.Errorf(`no CRL found, expected DER or PEM blocks of type "X509 CRL", found %q`, others)
		}
		return nil, errors.New(`no CRL found, expected DER or PEM blocks of type "X509 CRL"`)
	}
	return out, nil
}
