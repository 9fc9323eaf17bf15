package allow

// Match reports whether name matches pattern. In the pattern, "*" matches one
// or more characters other than sep (one DNS label when sep is '.', one URI
// path segment when sep is '/'), and "**" matches one or more characters of
// any kind. Everything else matches itself; fold compares ASCII letters
// without regard to case (DNS names, RFC 4343).
//
// "*" needs at least one character so that "*.example.com" does not match
// ".example.com", in line with the wildcard certificate rule of RFC 6125
// section 6.4.3.
func Match(pattern, name string, sep byte, fold bool) bool {
	return match(pattern, name, sep, fold)
}

// lower folds an ASCII letter; DNS case-insensitivity is ASCII only (RFC
// 4343), and comparing byte by byte avoids allocating lowered copies on
// every handshake.
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// match is a plain backtracking glob; patterns come from configuration and
// names from certificates, both short, and the number of stars is small, so
// the worst case stays tiny.
func match(p, s string, sep byte, fold bool) bool {
	for len(p) > 0 {
		if p[0] != '*' {
			if len(s) == 0 || (s[0] != p[0] && (!fold || lower(s[0]) != lower(p[0]))) {
				return false
			}
			p, s = p[1:], s[1:]
			continue
		}
		deep := len(p) > 1 && p[1] == '*'
		rest := p[1:]
		if deep {
			rest = p[2:]
		}
		// Consume at least one character, then try the rest of the pattern
		// after each possible run.
		for i := 1; i <= len(s); i++ {
			if !deep && s[i-1] == sep {
				return false
			}
			if match(rest, s[i:], sep, fold) {
				return true
			}
		}
		return false
	}
	return len(s) == 0
}
