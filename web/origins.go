package web

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/passerelle/passerelle/internal/ratelog"
)

// forbiddenBody answers a request whose Origin is refused.
const forbiddenBody = "403 forbidden: the page's origin is not in websocket.origins\n"

// allOrigins is the entry of the origins list that allows every Origin.
const allOrigins = "*"

// DefaultOrigins is the default websocket.origins: every origin, as the
// default policy file allows every domain.
func DefaultOrigins() []string { return []string{allOrigins} }

// Origins decides which web pages may open a WebSocket (or read an asset
// with fetch) on a listener, from the Origin header browsers send
// (RFC 6454). A request without Origin comes from a program that is not a
// browser (a native client, curl) and is allowed: Origin protects browser
// users from pages they visit, not the server from clients.
type Origins struct {
	all     bool
	allowed map[string]bool
	logger  *ratelog.Logger
}

// NewOrigins builds the check from the configured list. Each entry is "*"
// (every origin) or an origin, "scheme://host[:port]" with scheme http or
// https, compared exactly after lower-casing and dropping the scheme's
// default port, as browsers serialize it. A nil list means
// DefaultOrigins; an empty, non-nil list allows no page at all (only
// clients that send no Origin). logger receives the refusals; nil discards.
func NewOrigins(list []string, logger *slog.Logger) (*Origins, error) {
	if list == nil {
		list = DefaultOrigins()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o := &Origins{allowed: make(map[string]bool, len(list)), logger: ratelog.New(logger, 0)}
	var errs []error
	for i, entry := range list {
		if entry == allOrigins {
			o.all = true
			continue
		}
		norm, err := normalizeOrigin(entry)
		if err != nil {
			errs = append(errs, fmt.Errorf("origins[%d]: %w", i, err))
			continue
		}
		o.allowed[norm] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return o, nil
}

// permits reports whether a request carrying this Origin header value may
// proceed. The empty string (no Origin header) is allowed.
func (o *Origins) permits(origin string) bool {
	if origin == "" || o.all {
		return true
	}
	norm, err := normalizeOrigin(origin)
	if err != nil {
		return false
	}
	return o.allowed[norm]
}

// check allows r or answers it with 403 Forbidden and a log line, and
// reports whether the handler should go on. Several Origin headers are
// refused: a browser sends one.
func (o *Origins) check(w http.ResponseWriter, r *http.Request) bool {
	values := r.Header.Values("Origin")
	switch {
	case len(values) == 0:
		return true
	case len(values) == 1 && o.permits(values[0]):
		return true
	}
	o.logger.Warn("origin_refused", "origin refused",
		"remote_addr", r.RemoteAddr,
		"origin", clip(strings.Join(values, ", "), 200),
		"path", clip(r.URL.Path, 200),
		"reason", "origin_not_allowed")
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(forbiddenBody)))
	w.WriteHeader(http.StatusForbidden)
	_, _ = io.WriteString(w, forbiddenBody)
	return false
}

// normalizeOrigin checks that s is an http(s) origin and returns it
// lower-cased, without the scheme's default port.
func normalizeOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return "", fmt.Errorf("%q is not an origin; want scheme://host[:port], such as https://example.org", s)
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return "", fmt.Errorf("%q is not an origin; want scheme://host[:port] with scheme http or https, such as https://example.org", s)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%q is not an origin: no host; want scheme://host[:port], such as https://example.org", s)
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", fmt.Errorf("%q is not an origin: only scheme://host[:port], without user, path, query or fragment", s)
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		return scheme + "://" + net.JoinHostPort(host, port), nil
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host, nil
}

// clip cuts a peer-supplied string for a log line.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
