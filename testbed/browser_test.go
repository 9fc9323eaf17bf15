package testbed

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/passerelle/passerelle/internal/testbrowser"
)

var dashboardShot = flag.String("dashboard-screenshot", "", "write the dashboard, as headless chromium shows it at the end of TestDashboardInBrowser, to this PNG file (docs/testbed-dashboard.png)")

// TestDashboardInBrowser opens the testbed's dashboard in headless chromium,
// which trusts the testbed root through an NSS database made for the test
// (testbrowser): the page must judge the browser right on every endpoint
// decided by the certificate alone, list the others as not judged, and each
// endpoint must answer the browser with a page naming it and its defect.
func TestDashboardInBrowser(t *testing.T) {
	tb := startTestbed(t)
	b := testbrowser.Start(t, testbrowser.Options{TrustCAs: []*x509.Certificate{tb.caCertificate()}})
	b.Navigate("http://" + tb.HTTPAddress() + "/")
	judged := 0
	for _, ep := range tb.endpoints {
		if notJudged(ep) == "" {
			judged++
		}
	}
	want := fmt.Sprintf("done: %d endpoints judged, %d right, 0 wrong", judged, judged)
	if got := b.WaitText("#summary", "done:"); got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	rows := testbrowser.Eval[map[string][]string](b, `Object.fromEntries([...document.querySelectorAll("#rows tr")].map(
		tr => [tr.dataset.endpoint, [tr.children[3].textContent, tr.children[4].dataset.verdict, tr.children[4].textContent]]))`)
	if len(rows) != len(plans) {
		t.Errorf("%d rows, want one per endpoint (%d)", len(rows), len(plans))
	}
	for _, ep := range tb.endpoints {
		row := rows[ep.name]
		if len(row) != 3 {
			t.Errorf("%s: no row", ep.name)
			continue
		}
		did, verdict, text := row[0], row[1], row[2]
		switch {
		case notJudged(ep) != "" && (verdict != "not-judged" || text != "not judged by this page"):
			t.Errorf("%s: %s (%s), want not judged by this page", ep.name, verdict, text)
		case notJudged(ep) == "" && verdict != "right":
			t.Errorf("%s: expected %s, the browser %s: %q", ep.name, ep.status, did, text)
		}
	}
	// Not judged, with the reason: client certificates, AIA, revocation,
	// no TLS.
	var notJudgedNames []string
	for _, ep := range tb.endpoints {
		if notJudged(ep) != "" {
			notJudgedNames = append(notJudgedNames, ep.name)
		}
	}
	if got, want := strings.Join(notJudgedNames, " "), "incomplete-chain revoked revoked-no-staple client-cert-request client-cert-require plain-text silent"; got != want {
		t.Errorf("not judged: %s, want %s", got, want)
	}
	if *dashboardShot != "" {
		ctx, cancel := context.WithTimeout(b.Context(), testbrowser.DefaultTimeout)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(*dashboardShot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Each endpoint's own page, by its server name.
	for _, name := range []string{"trusted", "cross-signed-expired", "namesake-issuer"} {
		ep := tb.byName[normalName(serverName(name))]
		_, port, _ := net.SplitHostPort(ep.info.Address)
		b.Navigate("https://" + ep.info.ServerName + ":" + port + "/")
		if got := b.WaitText("#endpoint", name); got != name {
			t.Errorf("page heading %q, want %q", got, name)
		}
		if got := b.WaitText("#defect", ""); got != ep.description {
			t.Errorf("%s: page says %q, want the defect %q", name, got, ep.description)
		}
	}
}
