package hub

import (
	"fmt"
	"slices"
	"unicode"

	"golang.org/x/text/secure/precis"
)

// Nicknames are compared the way RFC 8266 (PRECIS, nicknames) says: after
// width mapping and NFKC (a fullwidth "ａｎｎ" is "ann"), and without regard
// to case ("Ann" and "ANN" are "ann"). Two nicknames with the same key are
// the same nickname; the holder keeps the form it wrote.
//
// PRECIS does not catch look-alikes from other scripts: the Cyrillic "а" in
// "аnn" is a different letter from the Latin "a". So a nickname's letters
// must come from one script, or from one of the combinations that writing
// systems use together (Unicode TS #39, "Highly Restrictive": Latin with
// Han, Hiragana and Katakana; Latin with Han and Bopomofo; Latin with Han
// and Hangul).

// nickKey returns the comparison key of a nickname that passed checkName.
func nickKey(name string) (string, error) {
	if err := checkScripts(name); err != nil {
		return "", err
	}
	key, err := precis.Nickname.CompareKey(name)
	if err != nil {
		return "", fmt.Errorf("holds a character that RFC 8266 does not allow in nicknames (%v)", err)
	}
	return key, nil
}

// scriptSets returns the combinations of scripts a nickname may mix.
func scriptSets() [3][]string {
	return [...][]string{
		{"Latin", "Han", "Hiragana", "Katakana"},
		{"Latin", "Han", "Bopomofo"},
		{"Latin", "Han", "Hangul"},
	}
}

// checkScripts refuses a name whose letters come from scripts that are not
// written together. Digits, spaces and punctuation (the Common and
// Inherited scripts) go with any script.
func checkScripts(name string) error {
	var scripts []string // in order of appearance
	var first rune       // the first letter of scripts[0]
	for _, r := range name {
		s := scriptOf(r)
		if s == "" || slices.Contains(scripts, s) {
			continue
		}
		if len(scripts) == 0 {
			first = r
		}
		scripts = append(scripts, s)
		if !writtenTogether(scripts) {
			return fmt.Errorf("mixes scripts: %q is %s, %q is %s", first, scripts[0], r, s)
		}
	}
	return nil
}

// writtenTogether reports whether scripts is a single script, or scripts
// that one of scriptSets holds together.
func writtenTogether(scripts []string) bool {
	if len(scripts) <= 1 {
		return true
	}
	for _, set := range scriptSets() {
		all := true
		for _, s := range scripts {
			all = all && slices.Contains(set, s)
		}
		if all {
			return true
		}
	}
	return false
}

// scriptOf returns the Unicode script of r, or "" for the Common and
// Inherited scripts and for unassigned code points.
func scriptOf(r rune) string {
	if r < 0x80 {
		if unicode.IsLetter(r) {
			return "Latin"
		}
		return ""
	}
	for name, table := range unicode.Scripts {
		if name == "Common" || name == "Inherited" {
			continue
		}
		if unicode.Is(table, r) {
			return name
		}
	}
	return ""
}
