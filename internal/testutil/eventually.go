package testutil

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/retry"
)

// Polling starts fast, so a condition that holds almost at once costs almost
// nothing, and slows down so a long wait (a certificate renewal, a TLS dial
// in cond) does not spin on machines shared with other test binaries.
const (
	firstPoll = time.Millisecond
	maxPoll   = 20 * time.Millisecond
)

// Eventually calls cond until it returns true and fails the test if it still
// returns false once timeout has passed. what names the awaited event in the
// failure ("timed out after 5s waiting for <what>"). cond runs on the test's
// goroutine, so it may itself call tb.Fatal.
func Eventually(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	if !poll(timeout, cond) {
		tb.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// EventuallyReport is Eventually for failures that need the state at the
// moment of giving up (a room's size, a goroutine dump): report is called
// only then, and its result is the failure message.
func EventuallyReport(tb testing.TB, timeout time.Duration, cond func() bool, report func() string) {
	tb.Helper()
	if !poll(timeout, cond) {
		tb.Fatal(report())
	}
}

// EventuallyContains waits until b holds want, and on failure prints what b
// did hold.
func EventuallyContains(tb testing.TB, b *Buffer, want string, timeout time.Duration) {
	tb.Helper()
	EventuallyReport(tb, timeout, func() bool { return strings.Contains(b.String(), want) }, func() string {
		return fmt.Sprintf("timed out after %s waiting for %q in:\n%s", timeout, want, b.String())
	})
}

// poll reports whether cond held before the deadline. cond is checked once
// more after the deadline has passed, so a slow cond always gets a last say.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	wait := retry.Backoff{Min: firstPoll, Max: maxPoll}
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(wait.Next())
	}
	return true
}
