package allow

import (
	"regexp"
	"strings"
	"testing"
)

// refMatch is Match written as a regular expression, the obvious reading of
// the documented syntax, to check the position-set matcher against.
func refMatch(t *testing.T, pattern, name string, sep byte, fold bool) bool {
	var re strings.Builder
	re.WriteString(`\A(?s)`)
	for i := 0; i < len(pattern); {
		switch {
		case strings.HasPrefix(pattern[i:], "**"):
			re.WriteString(`.+`)
			i += 2
		case pattern[i] == '*':
			re.WriteString(`[^` + regexp.QuoteMeta(string(sep)) + `]+`)
			i++
		default:
			c := pattern[i]
			if l := lower(c); fold && 'a' <= l && l <= 'z' {
				re.WriteString("[" + string(l) + string(l-'a'+'A') + "]")
			} else {
				re.WriteString(`\x` + hexByte(c))
			}
			i++
		}
	}
	re.WriteString(`\z`)
	r, err := regexp.Compile(re.String())
	if err != nil {
		t.Fatalf("reference regexp %q: %v", re.String(), err)
	}
	return r.MatchString(name)
}

func hexByte(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}

func FuzzMatch(f *testing.F) {
	f.Add("*.example.com", "a.example.com", byte('.'), true)
	f.Add("spiffe://example.org/**", "spiffe://example.org/ns/prod", byte('/'), false)
	f.Add("a*b*c", "aXbYc", byte('.'), false)
	f.Add("***", "a.b", byte('.'), false)
	f.Add("*", "", byte('.'), false)
	f.Fuzz(func(t *testing.T, pattern, name string, sep byte, fold bool) {
		if len(pattern) > 64 || len(name) > 300 {
			return
		}
		// The reference reads the name as bytes; keep to ASCII so that the
		// regexp's UTF-8 decoding does not differ from byte matching.
		for _, s := range []string{pattern, name, string(sep)} {
			for i := 0; i < len(s); i++ {
				if s[i] >= 0x80 {
					return
				}
			}
		}
		if sep == '*' {
			return
		}
		got := Match(pattern, name, sep, fold)
		if want := refMatch(t, pattern, name, sep, fold); got != want {
			t.Fatalf("Match(%q, %q, %q, %v) = %v, the reference says %v", pattern, name, sep, fold, got, want)
		}
	})
}

// A pattern full of stars against a long name that almost matches would take
// a backtracking matcher astronomically long (the test would hang until the
// test timeout); this one does 60×2000 steps.
func TestMatchNoBacktrackingBlowUp(t *testing.T) {
	pattern := strings.Repeat("**a", 20) + "b"
	name := strings.Repeat("a", 2000)
	if Match(pattern, name, '/', false) {
		t.Fatal("matched a name without the final b")
	}
	if !Match(pattern, name+"b", '/', false) {
		t.Fatal("did not match the name with the final b")
	}
}
