package termsafe

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Escape returns s with every control character (C0, DEL, C1), every
// bidirectional override or isolate and every byte of invalid UTF-8 replaced
// by a visible escape. A string that needs nothing is returned as is.
func Escape(s string) string {
	i := firstUnsafe(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteString(hex2(s[i]))
		case unsafeRune(r):
			writeEscaped(&b, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// firstUnsafe returns the index of the first byte that starts something
// Escape changes, or -1.
func firstUnsafe(s string) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || unsafeRune(r) {
			return i
		}
		i += size
	}
	return -1
}

// unsafeRune reports whether a terminal would act on r rather than show it.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f: // C0, DEL
		return true
	case r >= 0x80 && r <= 0x9f: // C1
		return true
	case r >= 0x202a && r <= 0x202e: // LRE, RLE, PDF, LRO, RLO
		return true
	case r >= 0x2066 && r <= 0x2069: // LRI, RLI, FSI, PDI
		return true
	}
	return false
}

func writeEscaped(b *strings.Builder, r rune) {
	switch r {
	case '\t':
		b.WriteString(`\t`)
	case '\n':
		b.WriteString(`\n`)
	case '\r':
		b.WriteString(`\r`)
	default:
		if r < utf8.RuneSelf {
			b.WriteString(`\x`)
			b.WriteString(hex2(byte(r)))
			return
		}
		b.WriteString(`\u`)
		h := strconv.FormatInt(int64(r), 16)
		b.WriteString(strings.Repeat("0", 4-len(h)))
		b.WriteString(h)
	}
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&0xf]})
}

// Error returns err with its text escaped, for an error whose message may
// hold a peer's words (an asset server's refusal, a certificate's names).
// errors.Is and errors.As see through it to err. Error(nil) is nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*escapedError); ok {
		return err
	}
	return &escapedError{err: err}
}

type escapedError struct{ err error }

func (e *escapedError) Error() string { return Escape(e.err.Error()) }
func (e *escapedError) Unwrap() error { return e.err }
