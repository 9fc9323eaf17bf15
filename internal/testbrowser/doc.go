// Package testbrowser drives Debian's chromium, headless, from Go tests, so
// that pages served by passerelle are checked in a real browser engine.
//
// Start a browser with Start; it trusts the CA certificates given in
// Options.TrustCAs through an NSS database made for the test (the one
// chromium reads on Linux, $HOME/.pki/nssdb, with HOME pointed at a
// temporary folder), never by ignoring certificate errors, so a page that
// loads proves that its chain verifies. Then Navigate, Eval, WaitVisible,
// WaitText and Screenshot; each fails the test on error and is bounded by
// Options.Timeout. With TESTBROWSER_SCREENSHOTS set to a folder, a failing
// test leaves a screenshot of its tab there.
//
// The browser needs two Debian packages: chromium and libnss3-tools (for
// certutil). A test that needs them and does not find them fails, with a
// message saying what to install; it does not skip, because a check that
// silently does not run proves nothing.
package testbrowser
