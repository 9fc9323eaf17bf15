// Command passerelle is a TLS socket service with its own certificate tooling:
// an encrypted XMLSocket chat relay, an ENVOIE asset stream, a certificate
// validation testbed, and the tools to issue, inspect and check certificates.
//
// Start with root.go (newRootCmd: the command tree, and the configuration
// read strictly by internal/serve's ReadSettings against settings.go's
// fileConfig). serve.go is serve's cobra command; serve itself is put
// together in internal/serve. Each other command is one file named after it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/passerelle/passerelle/internal/termsafe"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd(ctx, os.Stdin, os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.err != nil {
				fmt.Fprintln(os.Stderr, "passerelle:", printable(ee.err))
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "passerelle:", printable(err))
		os.Exit(1)
	}
}

// printable is an error's text for a terminal: an error may quote what a
// peer sent (a certificate's names, a server's refusal), so every line is
// escaped (internal/termsafe); the lines themselves stay lines.
func printable(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = termsafe.Escape(l)
	}
	return strings.Join(lines, "\n")
}

// exitError carries a specific exit status out of a command. A nil err exits
// with the code and prints nothing more (the command already said what it had
// to say).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }
