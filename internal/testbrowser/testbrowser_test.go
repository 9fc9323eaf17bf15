package testbrowser

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

// serveTLS serves handler over TLS on loopback with a certificate for
// 127.0.0.1 and localhost issued by ca, and returns its https URL.
func serveTLS(t *testing.T, ca *testpki.CA, handler http.Handler) string {
	t.Helper()
	leaf := ca.Leaf(t, testpki.LeafOptions{})
	ln := tls.NewListener(testutil.Listen(t), &tls.Config{
		Certificates: []tls.Certificate{leaf.TLS()},
		NextProtos:   []string{"http/1.1"},
	})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String() + "/"
}

const testPage = `<!doctype html><html><head><meta charset="utf-8"><title>t</title></head>
<body><p id="greeting">hello from the test server</p>
<button id="b" onclick="alert('pressed')">b</button></body></html>`

func pageHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, testPage)
	})
}

// TestBrowserTrustsTheTestCA checks that the browser trusts exactly the CA
// it was given, through its NSS database: a page whose certificate that CA
// issued loads, one from another CA is refused, and the helpers work on
// the loaded page.
func TestBrowserTrustsTheTestCA(t *testing.T) {
	start := time.Now()
	trusted := testpki.NewRoot(t, testpki.CAOptions{CommonName: "testbrowser trusted root"})
	other := testpki.NewRoot(t, testpki.CAOptions{CommonName: "testbrowser other root"})
	good := serveTLS(t, trusted, pageHandler())
	bad := serveTLS(t, other, pageHandler())

	b := Start(t, Options{TrustCAs: []*x509.Certificate{trusted.Cert}})
	t.Logf("browser started in %v", time.Since(start))

	err := b.NavigateErr(bad)
	if err == nil || !strings.Contains(err.Error(), "ERR_CERT_AUTHORITY_INVALID") {
		t.Fatalf("page from an untrusted CA: got error %v, want net::ERR_CERT_AUTHORITY_INVALID", err)
	}

	b.Navigate(good)
	b.WaitVisible("#greeting")
	if got := b.WaitText("#greeting", "hello"); got != "hello from the test server" {
		t.Errorf("text of #greeting = %q", got)
	}
	if got := Eval[string](b, `location.protocol + " " + document.title`); got != "https: t" {
		t.Errorf("eval = %q, want %q", got, "https: t")
	}
	if got := Eval[int](b, `Promise.resolve(40 + 2)`); got != 42 {
		t.Errorf("eval of a promise = %d, want 42", got)
	}
	if _, err := EvalErr[int](b, `nosuchvariable`); err == nil ||
		!strings.Contains(err.Error(), "nosuchvariable is not defined") {
		t.Errorf("eval of a bad expression: got %v, want a ReferenceError", err)
	}

	// A dialog is recorded and dismissed, so it cannot hang the test.
	Eval[bool](b, `document.getElementById("b").click(), true`)
	testutil.Eventually(t, "the alert to be recorded", 5*time.Second, func() bool {
		return len(b.Dialogs()) == 1
	})
	if got := b.Dialogs()[0]; got != "alert: pressed" {
		t.Errorf("dialog = %q, want %q", got, "alert: pressed")
	}
	// The page works again once the dialog is gone.
	if got := Eval[int](b, `1 + 1`); got != 2 {
		t.Errorf("eval after the dialog = %d", got)
	}

	Eval[bool](b, `console.log("from", "page"), true`)
	testutil.Eventually(t, "the console line to be recorded", 5*time.Second, func() bool {
		return strings.Contains(strings.Join(b.Console(), "\n"), `console.log: "from" "page"`)
	})

	png := b.Screenshot()
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("screenshot is not a PNG: starts with %q", png[:min(8, len(png))])
	}
	t.Logf("whole test: %v", time.Since(start))
}

// fakeTB records a Fatalf and stops the goroutine that called it, as
// testing.T does.
type fakeTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
	dir string
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) TempDir() string   { return f.dir }
func (f *fakeTB) Cleanup(fn func()) {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

// TestMissingChromiumFails checks that a machine without chromium fails the
// test (never skips it) and says what to install.
func TestMissingChromiumFails(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	f := &fakeTB{TB: t, dir: t.TempDir()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(f, Options{})
	}()
	<-done
	want := "testbrowser: chromium is needed by this test and is not on PATH; install it with: apt-get install chromium libnss3-tools"
	if !strings.HasPrefix(f.msg, want) {
		t.Errorf("message = %q\nwant it to start with %q", f.msg, want)
	}
}

// failOnPurposeEnv makes TestFailingForScreenshot run, and fail; only
// TestScreenshotOnFailure sets it, in a child process.
const failOnPurposeEnv = "TESTBROWSER_FAIL_ON_PURPOSE"

func TestFailingForScreenshot(t *testing.T) {
	if os.Getenv(failOnPurposeEnv) == "" {
		t.Skip("run by TestScreenshotOnFailure only")
	}
	b := Start(t, Options{})
	b.Navigate("about:blank")
	t.Error("failing on purpose")
}

// TestScreenshotOnFailure checks that a failing browser test leaves a PNG
// of its tab in TESTBROWSER_SCREENSHOTS.
func TestScreenshotOnFailure(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFailingForScreenshot$", "-test.count=1")
	cmd.Env = append(os.Environ(), failOnPurposeEnv+"=1", ScreenshotDirEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "failing on purpose") {
		t.Fatalf("the child test should fail: %v\n%s", err, out)
	}
	png, err := os.ReadFile(filepath.Join(dir, "TestFailingForScreenshot.png"))
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, out)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("the screenshot is not a PNG")
	}
}
