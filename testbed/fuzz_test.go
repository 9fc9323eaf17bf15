package testbed

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/passerelle/passerelle/secure"
)

// FuzzVerdictMessage: whatever a client writes into its certificate's
// subject (the reason quotes it too), the verdict is one well-formed frame:
// exactly one NUL, at the end, and it parses back. A NUL or markup in a
// hostile common name must not split the frame or forge attributes.
func FuzzVerdictMessage(f *testing.F) {
	f.Add("client-cert-request", "CN=alice", `certificate expired on 2026-01-01T00:00:00Z`)
	f.Add("x", "CN=\x00evil", `a "quoted" <reason> & more`)
	f.Add("x", `CN=" status="trusted`, "\x01\x02\ufffe")
	f.Fuzz(func(t *testing.T, endpoint, subject, reason string) {
		v := secure.Verdict{Status: secure.StatusInvalid, Reason: reason + " " + subject}
		frame := verdictMessage(endpoint, v)
		if i := bytes.IndexByte(frame, 0); i != len(frame)-1 {
			t.Fatalf("NUL at %d in a frame of %d bytes: %q", i, len(frame), frame)
		}
		got, err := ParseVerdict(frame)
		if err != nil {
			t.Fatalf("ParseVerdict(%q): %v", frame, err)
		}
		if got.Status != secure.StatusInvalid {
			t.Fatalf("status %q, want invalid: %q", got.Status, frame)
		}
		// Text made only of characters XML can carry comes back unchanged.
		if xmlSafe(v.Reason) && got.Reason != v.Reason {
			t.Fatalf("reason %q came back as %q", v.Reason, got.Reason)
		}
	})
}

// xmlSafe reports whether s is valid UTF-8 made of XML 1.0 characters
// (section 2.2) that attribute normalisation keeps as they are (no tab,
// CR or LF, which a parser turns into spaces).
func xmlSafe(s string) bool {
	if !utf8.ValidString(s) || strings.ContainsAny(s, "\t\r\n") {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0xFFFE || r == 0xFFFF || (r >= 0xD800 && r <= 0xDFFF) {
			return false
		}
	}
	return true
}
