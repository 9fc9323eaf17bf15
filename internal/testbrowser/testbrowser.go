package testbrowser

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// DefaultTimeout bounds each browser action when Options.Timeout is zero.
const DefaultTimeout = 15 * time.Second

// Options configures Start. The zero value starts a browser that trusts
// nothing but the system roots.
type Options struct {
	// TrustCAs are added to the browser's NSS database as trusted for
	// server authentication ("C,,").
	TrustCAs []*x509.Certificate
	// Timeout bounds each action (navigation, evaluation, wait). Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Flags are extra chromium command-line flags ("name" -> value; true for
	// a flag without a value).
	Flags map[string]any
	// Home, when set, is the HOME chromium runs with, taken as it is: its
	// .pki/nssdb is what chromium trusts, as on a person's account (a test
	// of what an installer put there). Empty: a fresh temporary HOME.
	Home string
}

// Browser is one headless chromium with a private profile and HOME, and
// one tab. It is closed when the test ends.
type Browser struct {
	tb      testing.TB
	ctx     context.Context
	timeout time.Duration

	mu      sync.Mutex
	console []string
	dialogs []string
}

// Start launches chromium for tb. It fails the test, with the command that
// installs them, when chromium or certutil is missing.
func Start(tb testing.TB, opts Options) *Browser {
	tb.Helper()
	exe := lookPath(tb, "chromium", "chromium")
	home := tb.TempDir()
	profile := filepath.Join(home, "profile")
	if opts.Home != "" {
		home = opts.Home
	}
	if len(opts.TrustCAs) > 0 {
		certutil := lookPath(tb, "certutil", "libnss3-tools")
		makeNSSDB(tb, certutil, home, opts.TrustCAs)
	}
	if err := os.Mkdir(profile, 0o700); err != nil {
		tb.Fatalf("testbrowser: profile folder: %v", err)
	}

	allocOpts := append([]chromedp.ExecAllocatorOption{}, chromedp.DefaultExecAllocatorOptions[:]...)
	allocOpts = append(allocOpts,
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		// chromium reads its NSS database from $HOME/.pki/nssdb; caches
		// and settings go under the same temporary HOME.
		chromedp.Env("HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
			"XDG_CACHE_HOME="+filepath.Join(home, ".cache")),
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1024, 768),
	)
	if os.Geteuid() == 0 {
		// chromium refuses to run as root with its sandbox on.
		allocOpts = append(allocOpts, chromedp.NoSandbox)
	}
	for name, v := range opts.Flags {
		allocOpts = append(allocOpts, chromedp.Flag(name, v))
	}

	b := &Browser{tb: tb, timeout: opts.Timeout}
	if b.timeout == 0 {
		b.timeout = DefaultTimeout
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithErrorf(tb.Logf))
	tb.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	b.ctx = ctx

	// The first action starts the browser and opens the tab. The browser
	// lives as long as the context of that first action, so it gets the
	// tab's context itself, bounded by a watchdog rather than a timeout.
	watchdog := time.AfterFunc(2*b.timeout, cancelCtx)
	err := chromedp.Do(ctx)
	if !watchdog.Stop() {
		err = fmt.Errorf("not started after %v: %w", 2*b.timeout, err)
	}
	if err != nil {
		tb.Fatalf("testbrowser: start %s: %v", exe, err)
	}
	if err := chromedp.Listen(ctx, b.onEvent); err != nil {
		tb.Fatalf("testbrowser: listen to the tab: %v", err)
	}
	// Runs before the browser is closed (cleanups run last first).
	tb.Cleanup(func() { b.screenshotOnFailure() })
	return b
}

// onEvent records console messages, uncaught exceptions and dialogs, and
// dismisses dialogs so that a page calling alert() cannot hang the test. It
// runs in the tab's message loop: it must return fast.
func (b *Browser) onEvent(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			if a.Value != nil {
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		b.record(&b.console, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " ")))
	case *runtime.EventExceptionThrown:
		msg := ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			msg += " " + ev.ExceptionDetails.Exception.Description
		}
		b.record(&b.console, "exception: "+msg)
	case *page.EventJavascriptDialogOpening:
		b.record(&b.dialogs, fmt.Sprintf("%s: %s", ev.Type, ev.Message))
		// Listen's callback must not run commands: answer from another
		// goroutine.
		go func() {
			ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
			defer cancel()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}()
	}
}

func (b *Browser) record(list *[]string, s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	*list = append(*list, s)
}

// Console returns the console messages and uncaught exceptions seen so far,
// for a failing test to print.
func (b *Browser) Console() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

// Dialogs returns the alert, confirm and prompt dialogs the pages opened
// ("alert: 1"). Each was dismissed.
func (b *Browser) Dialogs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.dialogs...)
}

// Do runs chromedp actions within the action timeout and returns their
// error, for what the helpers below do not cover.
func (b *Browser) Do(actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// Context is the tab's context, for chromedp calls the helpers do not
// cover; bound it with a timeout.
func (b *Browser) Context() context.Context { return b.ctx }

// must runs actions and fails the test, with the page's console, on error.
func (b *Browser) must(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.tb.Helper()
	if err := b.Do(actions...); err != nil {
		b.fail(fmt.Sprintf("%s: %v", what, err))
	}
}

func (b *Browser) fail(msg string) {
	b.tb.Helper()
	if c := b.Console(); len(c) > 0 {
		msg += "\npage console:\n  " + strings.Join(c, "\n  ")
	}
	b.tb.Fatal("testbrowser: " + msg)
}

// Navigate opens url in the tab and waits for the page to load. A
// certificate the browser does not trust fails here
// (net::ERR_CERT_AUTHORITY_INVALID).
func (b *Browser) Navigate(url string) {
	b.tb.Helper()
	b.must("open "+url, chromedp.Navigate(url))
}

// NavigateErr is Navigate returning the error instead of failing the test.
func (b *Browser) NavigateErr(url string) error {
	return b.Do(chromedp.Navigate(url))
}

// Eval evaluates a JavaScript expression in the page and returns its value
// decoded from JSON into T (use chromedp.Void to discard it). A promise is
// awaited. An exception fails the test.
func Eval[T any](b *Browser, js string) T {
	b.tb.Helper()
	v, err := EvalErr[T](b, js)
	if err != nil {
		b.fail(fmt.Sprintf("evaluate %s: %v", js, err))
	}
	return v
}

// EvalErr is Eval returning the error instead of failing the test.
func EvalErr[T any](b *Browser, js string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

// WaitVisible waits until an element matching the CSS selector is visible.
func (b *Browser) WaitVisible(sel string) {
	b.tb.Helper()
	b.must("wait for "+sel+" to be visible", chromedp.WaitVisible(chromedp.CSS(sel)))
}

// WaitText waits until the text content of the first element matching the
// CSS selector contains want, and returns that text.
func (b *Browser) WaitText(sel, want string) string {
	b.tb.Helper()
	var last string
	deadline := time.Now().Add(b.timeout)
	for {
		text, err := EvalErr[string](b, fmt.Sprintf(
			`(() => { const e = document.querySelector(%s); return e ? e.textContent : "" })()`,
			jsString(sel)))
		if err == nil {
			last = text
			if strings.Contains(text, want) {
				return text
			}
		}
		if time.Now().After(deadline) {
			b.fail(fmt.Sprintf("wait for %s to contain %q: after %v its text is %q", sel, want, b.timeout, last))
			return ""
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Screenshot captures the visible part of the tab as PNG.
func (b *Browser) Screenshot() []byte {
	b.tb.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.fail(fmt.Sprintf("screenshot: %v", err))
	}
	return png
}

// ScreenshotDirEnv names the environment variable that, when set to a
// folder, makes a failing test save the tab's last screenshot there as
// TESTNAME.png.
const ScreenshotDirEnv = "TESTBROWSER_SCREENSHOTS"

func (b *Browser) screenshotOnFailure() {
	dir := os.Getenv(ScreenshotDirEnv)
	if dir == "" || !b.tb.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.tb.Logf("testbrowser: screenshot of the failed test: %v", err)
		return
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(b.tb.Name()) + ".png"
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.tb.Logf("testbrowser: save the screenshot of the failed test: %v", err)
		return
	}
	b.tb.Logf("testbrowser: screenshot of the failed test: %s", path)
}

// jsString quotes s as a JavaScript string literal (JSON is a subset of
// JavaScript).
func jsString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

// lookPath finds a program or fails the test with the Debian package that
// provides it.
func lookPath(tb testing.TB, name, pkg string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		tb.Fatalf("testbrowser: %s is needed by this test and is not on PATH; install it with: apt-get install chromium libnss3-tools (package %s): %v", name, pkg, err)
	}
	return path
}

// makeNSSDB creates home/.pki/nssdb, chromium's NSS database on Linux, with
// each CA trusted to issue server certificates ("C,,": a trusted CA for
// TLS, nothing for e-mail or code signing).
func makeNSSDB(tb testing.TB, certutil, home string, cas []*x509.Certificate) {
	tb.Helper()
	dir := filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatalf("testbrowser: NSS folder: %v", err)
	}
	db := "sql:" + dir
	run := func(args ...string) {
		tb.Helper()
		cmd := exec.Command(certutil, args...)
		cmd.Env = append(os.Environ(), "HOME="+home)
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("testbrowser: certutil %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("-N", "-d", db, "--empty-password")
	for i, ca := range cas {
		file := filepath.Join(home, fmt.Sprintf("ca%d.pem", i))
		data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
		if err := os.WriteFile(file, data, 0o600); err != nil {
			tb.Fatalf("testbrowser: write CA: %v", err)
		}
		nick := fmt.Sprintf("testbrowser CA %d %s", i, ca.Subject.CommonName)
		run("-A", "-d", db, "-n", nick, "-t", "C,,", "-a", "-i", file)
	}
}
