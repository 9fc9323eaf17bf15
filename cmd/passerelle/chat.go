package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/passerelle/passerelle/protocol/xmlsocket"
	"github.com/passerelle/passerelle/secure"
)

func newChatCmd(a *app) *cobra.Command {
	var (
		caFile     string
		serverName string
		plain      bool
		room       string
		nick       string
		linger     time.Duration
		maxMessage int
	)
	cmd := &cobra.Command{
		Use:   "chat HOST:PORT",
		Short: "A terminal chat client for the XMLSocket relay",
		Long: `chat connects to a passerelle chat relay (or any XMLSocket server) like a
SecureSocket, sends each line it reads as one NUL-terminated message, and prints
each message it receives on a line of its own.

It trusts the local CA of the data folder automatically (the one passerelle
serve created), plus the CA file given with --ca. When standard input ends (a
pipe), it sends what it read, waits --linger for answers, then closes.`,
		Example: `  passerelle chat localhost:10000
  passerelle chat localhost:10000 --room lobby --nick ann
  printf 'hi\n' | passerelle chat localhost:10000
  passerelle chat chat.example.org:443 --ca ./root.pem`,
		Args: exactArgs(1, "chat needs the relay's address, as HOST:PORT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr := args[0]
			if _, _, err := net.SplitHostPort(addr); err != nil {
				return fmt.Errorf("address %q: want HOST:PORT", addr)
			}
			conn, err := a.dialChat(cmd.Context(), addr, caFile, serverName, plain)
			if err != nil {
				return err
			}
			if isTerminal(a.in) {
				how := "TLS, certificate trusted"
				if plain {
					how = "plain TCP, not encrypted"
				}
				fmt.Fprintf(a.errOut, "connected to %s (%s). Type a line and press Enter to send it; Ctrl-D leaves.\n", addr, how)
			}
			return runChat(cmd.Context(), conn, a.in, a.out, chatOptions{
				room: room, nick: nick, linger: linger, maxMessage: maxMessage,
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&caFile, "ca", "", "PEM file of a CA to trust besides the local CA and the system roots")
	f.StringVar(&serverName, "servername", "", "the name to ask for in TLS (SNI) and to verify (default: the host of HOST:PORT)")
	f.BoolVar(&plain, "plain", false, "connect without TLS (a listener with tls.mode off)")
	f.StringVar(&room, "room", "", "join this room first (default: the shared room of seed clients)")
	f.StringVar(&nick, "nick", "", "set this nickname first")
	f.DurationVar(&linger, "linger", 500*time.Millisecond, "after standard input ends, how long to keep printing incoming messages")
	f.IntVar(&maxMessage, "max-message", 1<<20, "largest incoming message accepted, in bytes")
	return cmd
}

// dialChat opens a TLS (or, with plain, TCP) connection trusting the system
// roots, the local CA of the data folder and the extra CA file.
func (a *app) dialChat(ctx context.Context, addr, caFile, serverName string, plain bool) (net.Conn, error) {
	if plain {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("connect to %s: %w", addr, err)
		}
		return c, nil
	}
	roots, err := clientRoots(a.dataDir(), caFile)
	if err != nil {
		return nil, err
	}
	c, err := secure.Dial(ctx, addr, secure.ClientConfig{ServerName: serverName, RootCAs: roots, Logger: a.log})
	if err != nil {
		var he *secure.HandshakeError
		if errors.As(err, &he) {
			return nil, fmt.Errorf("connect to %s: certificate status %s: %w", addr, he.Verdict.Status, err)
		}
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return c, nil
}

type chatOptions struct {
	room, nick string
	linger     time.Duration
	maxMessage int
}

// runChat pumps lines from in to the relay and messages from the relay to
// out until in ends (then lingers) or the relay closes.
func runChat(ctx context.Context, conn net.Conn, in io.Reader, out io.Writer, o chatOptions) error {
	defer conn.Close()
	var wmu sync.Mutex
	send := func(msg string) error {
		wmu.Lock()
		defer wmu.Unlock()
		return xmlsocket.WriteFrame(conn, []byte(msg))
	}
	if o.nick != "" {
		if err := send(fmt.Sprintf(`<passerelle:nick name=%q/>`, o.nick)); err != nil {
			return fmt.Errorf("send nickname: %w", err)
		}
	}
	if o.room != "" {
		if err := send(fmt.Sprintf(`<passerelle:join room=%q/>`, o.room)); err != nil {
			return fmt.Errorf("join room: %w", err)
		}
	}

	recvDone := make(chan error, 1)
	go func() {
		r := xmlsocket.NewReader(conn, o.maxMessage)
		for {
			frame, err := r.ReadFrame()
			if err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
					err = nil
				}
				recvDone <- err
				return
			}
			msg := strings.TrimSuffix(string(frame), "\x00")
			if _, err := fmt.Fprintln(out, msg); err != nil {
				recvDone <- err
				return
			}
		}
	}()

	sendDone := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 4096), o.maxMessage)
		for sc.Scan() {
			if err := send(sc.Text()); err != nil {
				sendDone <- fmt.Errorf("send: %w", err)
				return
			}
		}
		sendDone <- sc.Err()
	}()

	select {
	case <-ctx.Done():
		return nil
	case err := <-recvDone:
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		return errors.New("the relay closed the connection")
	case err := <-sendDone:
		if err != nil {
			return err
		}
	}
	// Standard input ended: give answers a moment to arrive, then leave.
	t := time.NewTimer(o.linger)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case err := <-recvDone:
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
	}
	return nil
}

// exactArgs is cobra.ExactArgs with a message that says what was expected.
func exactArgs(n int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s (got %d argument(s))", msg, len(args))
		}
		return nil
	}
}

// isTerminal reports whether r is an interactive terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
