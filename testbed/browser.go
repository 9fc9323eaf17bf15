package testbed

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strconv"

	"github.com/passerelle/passerelle/secure"
)

// The testbed for browsers. Every TLS endpoint also answers a browser: a
// client that negotiates ALPN http/1.1 (every browser, curl) gets a page
// naming the endpoint and its defect at "GET /" instead of the echo service,
// which clients without ALPN (sockets, openssl, Python) keep. The HTTP port
// serves a dashboard at "/" that tries every endpoint from the visitor's
// browser and says, endpoint by endpoint, whether the browser accepted a
// certificate it should have refused, or the reverse, like badssl.com's
// dashboard, with nothing loaded from elsewhere.

//go:embed page/endpoint.html page/dashboard.html
var pages embed.FS

var (
	endpointPage  = template.Must(template.ParseFS(pages, "page/endpoint.html"))
	dashboardPage = template.Must(template.ParseFS(pages, "page/dashboard.html"))
)

// dashboardTimeoutMS is how long the dashboard waits for one endpoint
// before it says "no answer" (the silent endpoint never answers).
const dashboardTimeoutMS = 5000

// dashboardEntry is one endpoint as the dashboard's script sees it.
type dashboardEntry struct {
	Name           string        `json:"name"`
	ServerName     string        `json:"server_name"`
	Port           string        `json:"port"`
	IPOnly         bool          `json:"ip_only"`
	ExpectedStatus secure.Status `json:"expected_status"`
	Description    string        `json:"description"`
	// Judged is true when the certificate alone decides what a browser
	// must do; Accept is then whether it must load the page.
	Judged    bool   `json:"judged"`
	Accept    bool   `json:"accept"`
	NotJudged string `json:"not_judged,omitempty"`
	TimeoutMS int    `json:"timeout_ms"`
}

// notJudged says why the dashboard cannot judge a browser on ep from
// whether it loads a page, or "" when it can.
func notJudged(ep *endpoint) string {
	switch {
	case ep.noTLS != withTLS:
		return "no TLS, so no certificate to judge"
	case ep.clientAuth != ClientAuthNone:
		return "it judges the client's certificate"
	case ep.needsAIA:
		return "the status depends on whether the browser fetches a missing intermediate (AIA)"
	case ep.needsRevoke:
		return "the status depends on whether the browser checks revocation"
	}
	return ""
}

// dashboardEntries is the dashboard's view of every endpoint.
func (t *Testbed) dashboardEntries() []dashboardEntry {
	out := make([]dashboardEntry, 0, len(t.endpoints))
	for _, ep := range t.endpoints {
		_, port, _ := net.SplitHostPort(ep.info.Address)
		why := notJudged(ep)
		out = append(out, dashboardEntry{
			Name:           ep.name,
			ServerName:     ep.info.ServerName,
			Port:           port,
			IPOnly:         ep.ipOnly,
			ExpectedStatus: ep.status,
			Description:    ep.description,
			Judged:         why == "",
			Accept:         ep.status == secure.StatusTrusted,
			NotJudged:      why,
			TimeoutMS:      dashboardTimeoutMS,
		})
	}
	return out
}

// renderPages renders the dashboard and every endpoint's page once: what
// they show is fixed when New has issued the certificates.
func (t *Testbed) renderPages() error {
	var b bytes.Buffer
	if err := dashboardPage.Execute(&b, t.dashboardEntries()); err != nil {
		return fmt.Errorf("testbed: dashboard: %w", err)
	}
	t.dashboard = b.Bytes()
	for _, ep := range t.endpoints {
		var b bytes.Buffer
		if err := endpointPage.Execute(&b, ep.info); err != nil {
			return fmt.Errorf("testbed: page for %s: %w", ep.name, err)
		}
		ep.page = b.Bytes()
	}
	return nil
}

// serveDashboard writes the dashboard page.
func (t *Testbed) serveDashboard(w http.ResponseWriter, r *http.Request) {
	writePage(w, t.dashboard)
}

// endpointKey carries the endpoint a browser connection reached, from
// handle to the page handler.
type endpointKey struct{}

// pageHandler serves "GET /" on an endpoint: a page naming it and its
// defect. Anything else is 404.
func pageHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		ep, _ := r.Context().Value(endpointKey{}).(*endpoint)
		if ep == nil {
			http.NotFound(w, r)
			return
		}
		writePage(w, ep.page)
	})
	return mux
}

// writePage sends an HTML page that loads nothing from elsewhere.
func writePage(w http.ResponseWriter, page []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(page)))
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src https:; img-src 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(page)
}

// servePage hands a browser's connection to the endpoint pages' HTTP server.
func (t *Testbed) servePage(ctx context.Context, c net.Conn, ep *endpoint) {
	t.pages.ServeConn(context.WithValue(ctx, endpointKey{}, ep), c)
}
