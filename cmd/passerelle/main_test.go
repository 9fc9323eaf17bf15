package main

import (
	"errors"
	"testing"
)

// TestPrintableEscapesEachLine: an error that quotes a peer's bytes cannot
// drive the terminal, and a multi-line error keeps its lines.
func TestPrintableEscapesEachLine(t *testing.T) {
	err := errors.New("configuration:\nserver said \x1b[2J\x1b]2;owned\x07\nbye")
	want := "configuration:\nserver said \\x1b[2J\\x1b]2;owned\\x07\nbye"
	if got := printable(err); got != want {
		t.Errorf("printable = %q, want %q", got, want)
	}
}
