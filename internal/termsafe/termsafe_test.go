package termsafe

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"plain ASCII", "<b>hello</b> 100% \\ok/", "<b>hello</b> 100% \\ok/"},
		{"printable non-ASCII", "héllo ünïcode 日本語 ａｎｎ аnn 😀", "héllo ünïcode 日本語 ａｎｎ аnn 😀"},
		{"the attack of issue 10", "\033[2J\033]2;owned\007", `\x1b[2J\x1b]2;owned\x07`},
		{"fake status line", "ok\r\033[Kroot@host# ", `ok\r\x1b[Kroot@host# `},
		{"common C0", "a\tb\nc\rd", `a\tb\nc\rd`},
		{"NUL and the other C0", "\x00\x01\x08\x1f", `\x00\x01\x08\x1f`},
		{"DEL", "rm\x7f\x7f", `rm\x7f\x7f`},
		{"C1 controls as characters", "\u0080x\u009b2J\u009d0;t\u009c", `\u0080x\u009b2J\u009d0;t\u009c`},
		{"U+00A0 is printable", "a\u00a0b", "a\u00a0b"},
		{"bidi overrides", "abc\u202edcba\u202c", `abc\u202edcba\u202c`},
		{"every embedding and override", "\u202a\u202b\u202c\u202d\u202e", `\u202a\u202b\u202c\u202d\u202e`},
		{"bidi isolates", "\u2066\u2067\u2068\u2069", `\u2066\u2067\u2068\u2069`},
		{"neighbours of the bidi ranges", "\u2029\u202f\u2065\u206a", "\u2029\u202f\u2065\u206a"},
		{"a lone C1 byte is invalid UTF-8", "a\x9b2Jb", `a\x9b2Jb`},
		{"invalid bytes", "\xff\xfe", `\xff\xfe`},
		{"truncated sequence", "euro \xe2\x82", `euro \xe2\x82`},
		{"overlong encoding of /", "\xc0\xaf", `\xc0\xaf`},
		{"encoded surrogate", "\xed\xa0\x80", `\xed\xa0\x80`},
		{"literal U+FFFD stays", "\ufffd", "\ufffd"},
		{"escapes at both ends", "\x1bmiddle\x07", `\x1bmiddle\x07`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Escape(tt.in)
			if got != tt.want {
				t.Fatalf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if again := Escape(got); again != got {
				t.Fatalf("Escape is not idempotent: %q, then %q", got, again)
			}
		})
	}
}

// TestEscapeKeepsSafeStrings checks the fast path hands back the very
// string, so escaping every message costs nothing when nothing is wrong.
func TestEscapeKeepsSafeStrings(t *testing.T) {
	s := strings.Repeat("<message from=\"ann\">bonjour à tous</message>", 10)
	if n := testing.AllocsPerRun(100, func() { _ = Escape(s) }); n != 0 {
		t.Fatalf("Escape of a safe string allocates %v times", n)
	}
}

func TestError(t *testing.T) {
	inner := fmt.Errorf("get x: server refused: not_found: \x1b]2;owned\x07: %w", fs.ErrNotExist)
	err := Error(inner)
	if want := `get x: server refused: not_found: \x1b]2;owned\x07: file does not exist`; err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err.Error(), want)
	}
	if !errors.Is(err, fs.ErrNotExist) || errors.Unwrap(err) != inner {
		t.Fatal("the escaped error hides what it wraps")
	}
	if Error(err) != err {
		t.Fatal("escaping twice wraps twice")
	}
	if Error(nil) != nil {
		t.Fatal("Error(nil) is not nil")
	}
}

// FuzzEscape checks, for any input, that the output holds nothing a
// terminal acts on, that it is valid UTF-8, and that safe input is kept.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "hello", "\033[2J\033]2;owned\007", "\u009b", "\u202e", "\xff\xe2\x82", "a\tb\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := Escape(in)
		if !utf8.ValidString(out) {
			t.Fatalf("Escape(%q) = %q: invalid UTF-8", in, out)
		}
		for _, r := range out {
			if unsafeRune(r) {
				t.Fatalf("Escape(%q) = %q: still holds %U", in, out, r)
			}
		}
		if firstUnsafe(in) < 0 && out != in {
			t.Fatalf("Escape(%q) = %q: changed a safe string", in, out)
		}
		if Escape(out) != out {
			t.Fatalf("Escape is not idempotent on %q", in)
		}
	})
}
