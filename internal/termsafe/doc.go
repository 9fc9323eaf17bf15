// Package termsafe makes text that came from a peer safe to show on a
// terminal.
//
// A terminal acts on some bytes instead of showing them: the C0 controls
// (ESC starts the sequences that clear the screen, move the cursor or set
// the window title, BEL rings), DEL, and the C1 controls U+0080 to U+009F
// (U+009B is a one-character CSI for terminals that honour 8-bit controls).
// Invalid UTF-8 can decode to such a byte in a terminal that falls back to
// Latin-1. Bidirectional overrides and isolates (U+202A to U+202E, U+2066 to
// U+2069) reorder what follows them, so a line can show something other than
// what it says (the "Trojan Source" trick, CVE-2021-42574).
//
// Escape replaces each of these with a visible escape (\x1b, \u009b, \u202e;
// \t, \n and \r for the common ones) and leaves everything else, including
// every printable non-ASCII character, as it is. Every place where
// passerelle shows text a peer chose (a relayed chat message, an asset
// server's error text or listing, the names in a certificate) goes through
// Escape; Error does the same for an error's text.
//
// The escaping is for the eyes, not a reversible encoding: a backslash is
// left alone, so a peer can write the four characters \x1b, which then look
// like an escaped ESC. Use strconv.Quote where the exact bytes matter.
package termsafe
