package revocation

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/passerelle/passerelle/internal/retry"
)

// StaplerConfig describes the certificate a Stapler keeps stapled.
type StaplerConfig struct {
	// Leaf is the server's certificate; Issuer the CA that issued it.
	// Both required; Leaf must name an OCSP responder.
	Leaf, Issuer *x509.Certificate
	// Client fetches the responses. Default: a DefaultTimeout client.
	Client *http.Client
	// MinInterval is the shortest wait between two fetches, also the first
	// retry delay after a failure (doubled up to MaxInterval). Default 1m.
	MinInterval time.Duration
	// MaxInterval is the longest wait between two fetches. Default 12h.
	// Retries after a failure wait an hour at most.
	MaxInterval time.Duration
	// Logger receives a line per fetch. Default: discard.
	Logger *slog.Logger
}

// Stapler keeps a server's OCSP staple fresh: Run fetches one, then fetches
// again at RefreshTime (halfway through its validity), retrying with
// back-off (MinInterval doubling up to an hour) when the responder fails,
// while the previous staple stays in use until its nextUpdate. A server reads the current staple with Staple, or
// lets Certificate put it in a copy of its tls.Certificate, typically from
// its GetCertificate callback. Safe for concurrent use.
type Stapler struct {
	cfg    StaplerConfig
	log    *slog.Logger
	staple atomic.Pointer[stapled]
}

type stapled struct {
	der        []byte
	nextUpdate time.Time
}

// NewStapler checks cfg and returns a stapler; call Run to start it.
func NewStapler(cfg StaplerConfig) (*Stapler, error) {
	if cfg.Leaf == nil || cfg.Issuer == nil {
		return nil, errors.New("revocation: stapler: need both the certificate and its issuer")
	}
	if len(httpURLs(cfg.Leaf.OCSPServer)) == 0 {
		return nil, fmt.Errorf("revocation: stapler %q: %w", cfg.Leaf.Subject.String(), ErrNoOCSPServer)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: DefaultTimeout}
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = time.Minute
	}
	if cfg.MaxInterval <= 0 {
		cfg.MaxInterval = 12 * time.Hour
	}
	if cfg.MaxInterval < cfg.MinInterval {
		cfg.MaxInterval = cfg.MinInterval
	}
	return &Stapler{cfg: cfg, log: loggerOrDiscard(cfg.Logger)}, nil
}

// Staple returns the current staple, or nil when there is none or it has
// passed its nextUpdate (an expired staple makes careful clients fail, so
// none is better).
func (s *Stapler) Staple() []byte {
	st := s.staple.Load()
	if st == nil || (!st.nextUpdate.IsZero() && time.Now().After(st.nextUpdate)) {
		return nil
	}
	return st.der
}

// Certificate returns a copy of cert carrying the current staple, for a
// GetCertificate callback. The copy shares cert's chain and key. A cert
// whose leaf is not the stapler's, or a moment with no current staple,
// returns cert itself: a server that swaps certificates never staples one
// certificate's answer to another.
func (s *Stapler) Certificate(cert *tls.Certificate) *tls.Certificate {
	staple := s.Staple()
	if staple == nil || len(cert.Certificate) == 0 || !bytes.Equal(cert.Certificate[0], s.cfg.Leaf.Raw) {
		return cert
	}
	c := *cert
	c.OCSPStaple = staple
	return &c
}

// Refresh fetches a staple now. On failure the previous staple is kept. A
// staple that revokes the certificate is served all the same (clients
// learn the truth from the handshake) and logged as an error.
func (s *Stapler) Refresh(ctx context.Context) error {
	der, err := Staple(ctx, s.cfg.Leaf, s.cfg.Issuer, s.cfg.Client)
	if err != nil {
		return err
	}
	resp, err := ocsp.ParseResponse(der, nil)
	if err != nil {
		return fmt.Errorf("revocation: stapler: %w", err) // cannot happen: Staple parsed it
	}
	s.staple.Store(&stapled{der: der, nextUpdate: resp.NextUpdate})
	if resp.Status == ocsp.Revoked {
		s.log.Error("the certificate is revoked; stapling the revocation", "server_name", s.cfg.Leaf.Subject.CommonName,
			"serial", s.cfg.Leaf.SerialNumber.Text(16), "revoked_at", resp.RevokedAt, "reason", Reason(resp.RevocationReason).String())
	}
	return nil
}

// Run keeps the staple fresh until ctx is cancelled, and returns nil then.
func (s *Stapler) Run(ctx context.Context) error {
	// Retries wait an hour at most, or MaxInterval if shorter.
	backoff := retry.Backoff{Min: s.cfg.MinInterval, Max: min(s.cfg.MaxInterval, max(time.Hour, s.cfg.MinInterval))}
	for {
		var wait time.Duration
		if err := s.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			wait = backoff.Next()
			s.log.Warn("ocsp staple refresh failed", "server_name", s.cfg.Leaf.Subject.CommonName, "retry_in", wait.String(), "error", err)
		} else {
			backoff.Reset()
			next, _ := RefreshTime(s.staple.Load().der)
			wait = min(max(time.Until(next), s.cfg.MinInterval), s.cfg.MaxInterval)
			s.log.Debug("ocsp staple refreshed", "server_name", s.cfg.Leaf.Subject.CommonName, "next_refresh_in", wait.String())
		}
		if !retry.Sleep(ctx, wait) {
			return nil
		}
	}
}
