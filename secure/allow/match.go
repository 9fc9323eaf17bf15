package allow

import "strings"

// Match reports whether name matches pattern. In the pattern, "*" matches one
// or more characters other than sep (one DNS label when sep is '.', one URI
// path segment when sep is '/'), and "**" matches one or more characters of
// any kind. Everything else matches itself; fold compares ASCII letters
// without regard to case (DNS names, RFC 4343).
//
// "*" needs at least one character so that "*.example.com" does not match
// ".example.com", in line with the wildcard certificate rule of RFC 6125
// section 6.4.3.
//
// The time is O(len(pattern) × len(name)) whatever the pattern: names come
// from client certificates, and a backtracking matcher would let a crafted
// name against a many-star pattern cost exponential time per handshake.
func Match(pattern, name string, sep byte, fold bool) bool {
	return match(pattern, name, sep, fold)
}

// stackNames is the longest name matched without allocating (a DNS name is
// at most 253 characters).
const stackNames = 256

// match first compares the literal text before the first star and after the
// last one, which settles most mismatches at once, then runs what is left
// (from the first star to the last) over the rest of the name.
func match(p, s string, sep byte, fold bool) bool {
	first := strings.IndexByte(p, '*')
	if first < 0 {
		return len(p) == len(s) && equal(p, s, fold)
	}
	last := strings.LastIndexByte(p, '*')
	prefix, suffix := p[:first], p[last+1:]
	if len(s) < len(prefix)+len(suffix) || !equal(prefix, s[:len(prefix)], fold) ||
		!equal(suffix, s[len(s)-len(suffix):], fold) {
		return false
	}
	p, s = p[first:last+1], s[len(prefix):len(s)-len(suffix)]
	switch p {
	case "*": // the usual "*.example.com": one non-empty label
		return len(s) > 0 && strings.IndexByte(s, sep) < 0
	case "**":
		return len(s) > 0
	}
	return matchStars(p, s, sep, fold)
}

func equal(a, b string, fold bool) bool {
	if !fold {
		return a == b
	}
	for i := 0; i < len(a); i++ {
		if a[i] != b[i] && lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// matchStars runs the pattern over the name as a set of reachable positions:
// after each pattern token, cur[i] says whether the pattern so far can
// consume exactly name[:i].
func matchStars(p, s string, sep byte, fold bool) bool {
	n := len(s)
	var small [2][stackNames + 1]bool
	cur, next := small[0][:], small[1][:]
	if n > stackNames {
		cur, next = make([]bool, n+1), make([]bool, n+1)
	}
	cur, next = cur[:n+1], next[:n+1]
	cur[0] = true
	for k := 0; k < len(p); {
		clear(next)
		any := false
		if p[k] == '*' {
			deep := k+1 < len(p) && p[k+1] == '*'
			// next[j] holds when some i < j is reachable and s[i:j] is a
			// run the star may consume: no separator unless deep.
			run := false
			for j := 1; j <= n; j++ {
				if !deep && s[j-1] == sep {
					run = false
					continue
				}
				run = run || cur[j-1]
				if run {
					next[j] = true
					any = true
				}
			}
			k++
			if deep {
				k++
			}
		} else {
			c := p[k]
			for i := 0; i < n; i++ {
				if cur[i] && (s[i] == c || fold && lower(s[i]) == lower(c)) {
					next[i+1] = true
					any = true
				}
			}
			k++
		}
		if !any {
			return false
		}
		cur, next = next, cur
	}
	return cur[n]
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
