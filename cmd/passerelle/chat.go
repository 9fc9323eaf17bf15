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
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"golang.org/x/time/rate"

	"github.com/passerelle/passerelle/internal/termsafe"
	"github.com/passerelle/passerelle/protocol/xmlsocket"
)

// chatDefaultRate is the relay's default flood limit (hub.Config.FloodRate,
// chat.flood_rate): a client sending faster is disconnected.
const chatDefaultRate = 200

// The bounds of --rate: the interval between two messages must fit a
// time.Duration and be longer than nothing.
const (
	chatMinRate = 0.001
	chatMaxRate = 1e6
)

// chatDrainWait is how long chat keeps reading a piped input after the
// server has gone, to say how many of its lines were not sent.
const chatDrainWait = time.Second

// chatLong is chat --help's description.
const chatLong = `chat connects to a passerelle chat relay (or any XMLSocket server) like a
SecureSocket, sends each line it reads as one NUL-terminated message, and prints
each message it receives on a line of its own.

It trusts the local CA of the data folder automatically (the one passerelle
serve created), plus the CA file given with --ca. --timeout bounds the
connection and the TLS handshake.

On a terminal, chat edits the line being typed itself ("> " prompt, arrows,
history): a message that arrives is printed above it and the line is drawn
again, so typing is never broken. Ctrl-D (on an empty line) or Ctrl-C leaves.

In a pipe, it sends what it reads, at most --rate messages per second (the
relay disconnects a client that sends faster than its flood limit, 200 a
second by default; 0 sends as fast as possible), waits --linger for answers,
then closes. If the server closes the connection first, chat says how many
messages were sent and exits with status 1; so it does when the relay
refuses --nick (a pipe waits for that answer, up to --timeout, before its
first line).

The relay's control replies are shown in words after "* " (* your nickname
is "ann", * refused (nick-taken): nickname "erin" is taken).

Received messages are printed with control characters, C1 characters,
bidirectional overrides and invalid UTF-8 escaped (\x1b, \u009b, \u202e,
\xff; a line end inside a message shows as \n): what a peer sends cannot
drive the terminal, and each message stays on one line.`

func newChatCmd(a *app) *cobra.Command {
	var (
		caFile     string
		serverName string
		plain      bool
		o          chatOptions
	)
	cmd := &cobra.Command{
		Use:   "chat HOST:PORT",
		Short: "A terminal chat client for the XMLSocket relay",
		Long:  chatLong,
		Example: `  passerelle chat localhost:10000
  passerelle chat localhost:10000 --room lobby --nick ann
  printf 'hi\n' | passerelle chat localhost:10000
  seq 1 1000 | passerelle chat localhost:10000 --rate 100 --linger 2s
  passerelle chat chat.example.org:443 --ca ./root.pem --timeout 5s`,
		Args: exactArgs(1, "chat needs the relay's address, as HOST:PORT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr := args[0]
			if _, _, err := net.SplitHostPort(addr); err != nil {
				return fmt.Errorf("address %q: want HOST:PORT", addr)
			}
			if o.rate != 0 && !(o.rate >= chatMinRate && o.rate <= chatMaxRate) { // NaN too
				return fmt.Errorf("--rate %g: want 0 (no pacing), or from %g to %g messages a second", o.rate, chatMinRate, float64(chatMaxRate))
			}
			timeout, _ := cmd.Flags().GetDuration("timeout")
			if timeout <= 0 {
				return fmt.Errorf("--timeout %s: must be positive", timeout)
			}
			// The handshake error quotes the certificate's names.
			conn, err := a.dial(cmd.Context(), clientDial{addr: addr, dataDir: a.dataDir(), caFile: caFile, serverName: serverName, plain: plain, timeout: timeout})
			if err != nil {
				return termsafe.Error(err)
			}
			ui, err := a.chatUI(o.maxMessage)
			if err != nil {
				conn.Close()
				return err
			}
			if ui.interactive() {
				how := "TLS, certificate trusted"
				if plain {
					how = "plain TCP, not encrypted"
				}
				fmt.Fprintf(a.errOut, "connected to %s (%s). Type a line and press Enter to send it; Ctrl-D leaves.\r\n", addr, how)
			}
			o.nickWait = timeout
			return runChat(cmd.Context(), conn, ui, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&caFile, "ca", "", "PEM file of a CA to trust besides the local CA and the system roots")
	f.StringVar(&serverName, "servername", "", "the name to ask for in TLS (SNI) and to verify (default: the host of HOST:PORT)")
	f.BoolVar(&plain, "plain", false, "connect without TLS (a listener with tls.mode off)")
	f.StringVar(&o.room, "room", "", "join this room first (default: the shared room of seed clients)")
	f.StringVar(&o.nick, "nick", "", "set this nickname first")
	f.DurationVar(&o.linger, "linger", 500*time.Millisecond, "after standard input ends, how long to keep printing incoming messages")
	f.IntVar(&o.maxMessage, "max-message", 1<<20, "largest incoming message accepted, in bytes")
	f.Float64Var(&o.rate, "rate", chatDefaultRate, "messages sent per second at most, evenly spaced (the relay's default flood limit); 0 for no pacing")
	f.Duration("timeout", 10*time.Second, "time allowed to connect and complete the TLS handshake (and, in a pipe, for the answer to --nick)")
	return cmd
}

type chatOptions struct {
	room, nick string
	// nickWait bounds the wait for the answer to --nick in a pipe.
	nickWait   time.Duration
	linger     time.Duration
	maxMessage int
	// rate is the most messages sent per second, 0 for no pacing.
	rate float64
}

// chatUI is the person's side of a chat: the lines to send, and where
// received messages are shown.
type chatUI interface {
	// ReadLine returns the next line to send; io.EOF when input ends.
	ReadLine() (string, error)
	// Show displays one received message, already escaped.
	Show(msg string) error
	// interactive reports a person at a terminal rather than a pipe.
	interactive() bool
	// close gives the terminal back; nothing is shown after it.
	close()
}

// chatUI picks the line editor when both standard input and standard
// output are terminals, plain lines otherwise.
func (a *app) chatUI(maxMessage int) (chatUI, error) {
	in, inOK := a.in.(*os.File)
	out, outOK := a.out.(*os.File)
	if !inOK || !outOK || !term.IsTerminal(int(in.Fd())) || !term.IsTerminal(int(out.Fd())) {
		return newPipeUI(a.in, a.out, maxMessage), nil
	}
	state, err := term.MakeRaw(int(in.Fd()))
	if err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	size := func() (int, int, error) { return term.GetSize(int(out.Fd())) }
	ui := newTermUI(struct {
		io.Reader
		io.Writer
	}{in, out}, size)
	ui.restore = func() { _ = term.Restore(int(in.Fd()), state) }
	return ui, nil
}

// pipeUI reads lines and prints messages one per line.
type pipeUI struct {
	sc  *bufio.Scanner
	out io.Writer
}

func newPipeUI(in io.Reader, out io.Writer, maxLine int) *pipeUI {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 4096), maxLine)
	return &pipeUI{sc: sc, out: out}
}

func (u *pipeUI) ReadLine() (string, error) {
	if u.sc.Scan() {
		return u.sc.Text(), nil
	}
	if err := u.sc.Err(); err != nil {
		return "", err
	}
	return "", io.EOF
}

func (u *pipeUI) Show(msg string) error {
	_, err := io.WriteString(u.out, msg+"\n")
	return err
}

func (u *pipeUI) interactive() bool { return false }
func (u *pipeUI) close()            {}

// chatPrompt starts the line being typed.
const chatPrompt = "> "

// termUI is the interactive side: x/term's line editor over a terminal in
// raw mode. Its Write clears the prompt and the pending input, prints the
// message, and draws them again below it, which is what keeps a line being
// typed whole while messages arrive.
type termUI struct {
	t       *term.Terminal
	w       io.Writer
	size    func() (width, height int, err error)
	restore func()
}

func newTermUI(rw io.ReadWriter, size func() (int, int, error)) *termUI {
	u := &termUI{t: term.NewTerminal(rw, chatPrompt), w: rw, size: size}
	u.resize()
	return u
}

// resize follows the window's size, which the editor needs to redraw a
// line that wraps. Asking before each redraw spares a SIGWINCH handler.
func (u *termUI) resize() {
	if w, h, err := u.size(); err == nil && w > 0 {
		_ = u.t.SetSize(w, h)
	}
}

func (u *termUI) ReadLine() (string, error) {
	u.resize()
	return u.t.ReadLine()
}

func (u *termUI) Show(msg string) error {
	u.resize()
	_, err := u.t.Write([]byte(msg + "\n"))
	return err
}

func (u *termUI) interactive() bool { return true }

// close erases the prompt line, so what follows (an error, the shell's
// prompt) starts on a clean line, and restores the terminal's mode.
func (u *termUI) close() {
	_, _ = io.WriteString(u.w, "\r\x1b[K")
	if u.restore != nil {
		u.restore()
	}
}

// pacer spaces sends evenly at a rate: a golang.org/x/time/rate bucket of
// one token, the relay's own flood-limit mechanism, so a pause never lets a
// burst through. A nil *rate.Limiter (no pacing) does not wait.
type pacer struct{ lim *rate.Limiter }

func newPacer(r float64) pacer {
	if r <= 0 {
		return pacer{}
	}
	return pacer{lim: rate.NewLimiter(rate.Limit(r), 1)}
}

// wait blocks until the next send is due. It returns false if ctx ends or
// stop is closed first, and then gives the send's turn back.
func (p pacer) wait(ctx context.Context, stop <-chan struct{}) bool {
	if p.lim == nil {
		return true
	}
	res := p.lim.Reserve()
	d := res.Delay()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-stop:
	}
	res.Cancel()
	return false
}

// chatReceiver reads messages from the server and shows them until the
// connection ends; err says why once done is closed.
type chatReceiver struct {
	done chan struct{}
	err  error // errServerClosed, or a local failure
	// nick receives the first answer to a nick request.
	nick chan chatReply
}

// errServerClosed marks the server ending the connection (as opposed to a
// local failure such as an oversized message or a broken output).
var errServerClosed = errors.New("the server closed the connection")

func startReceiver(conn net.Conn, ui chatUI, maxMessage int) *chatReceiver {
	r := &chatReceiver{done: make(chan struct{}), nick: make(chan chatReply, 1)}
	go func() {
		defer close(r.done)
		rd := xmlsocket.NewReader(conn, maxMessage)
		for {
			frame, err := rd.ReadFrame()
			if err != nil {
				if isClosedByPeer(err) {
					err = errServerClosed
				} else {
					err = fmt.Errorf("receive: %w", err)
				}
				r.err = err
				return
			}
			msg := strings.TrimSuffix(string(frame), "\x00")
			// The relay's control replies are shown in words.
			if reply, ok := parseChatReply(msg); ok {
				msg = reply.text
				if reply.nick {
					select {
					case r.nick <- reply:
					default:
					}
				}
			}
			if err := ui.Show(termsafe.Escape(msg)); err != nil {
				r.err = fmt.Errorf("write output: %w", err)
				return
			}
		}
	}()
	return r
}

// isClosedByPeer reports an error that means the other end closed or reset
// the connection.
func isClosedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// runChat pumps lines from the UI to the relay and messages from the relay
// to the UI until input ends (then lingers) or the relay closes.
func runChat(ctx context.Context, conn net.Conn, ui chatUI, o chatOptions) error {
	recv := startReceiver(conn, ui, o.maxMessage)
	defer func() {
		conn.Close()
		<-recv.done // nothing is shown after close
		ui.close()
	}()
	pace := newPacer(o.rate)
	sent := 0
	// send paces and writes one message. A write that fails because the
	// server went away reports it as the receiver saw it.
	send := func(msg string) error {
		if !pace.wait(ctx, recv.done) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return errServerClosed
		}
		if err := xmlsocket.WriteFrame(conn, []byte(msg)); err != nil {
			if isClosedByPeer(err) {
				return errServerClosed
			}
			return fmt.Errorf("send: %w", err)
		}
		return nil
	}

	if err := sayFirst(ctx, send, recv, ui, o); err != nil {
		return err
	}

	// Input is read on a goroutine of its own: a read from a terminal or a
	// pipe cannot be interrupted, and the server may leave meanwhile.
	quit := make(chan struct{})
	defer close(quit)
	lines, inputEnd := readLines(ui, quit)

	read := 0
	for ended := false; !ended; {
		select {
		case <-ctx.Done():
			return nil
		case <-recv.done:
			if !errors.Is(recv.err, errServerClosed) {
				return fmt.Errorf("chat: %w", recv.err)
			}
			return closedError(sent, countRest(ui, read, lines, inputEnd))
		case err := <-inputEnd:
			if !errors.Is(err, io.EOF) {
				return fmt.Errorf("read input: %w", err)
			}
			ended = true
		case line := <-lines:
			read++
			if err := send(line); err != nil {
				switch {
				case ctx.Err() != nil:
					return nil // interrupted: leave as ctx.Done does
				case !errors.Is(err, errServerClosed):
					return err
				}
				return closedError(sent, countRest(ui, read, lines, inputEnd))
			}
			sent++
		}
	}

	// Input ended: give answers a moment to arrive, then leave.
	return lingerFor(ctx, recv, o.linger, sent)
}

// sayFirst sends --nick and --room before any line. In a pipe nobody is
// there to pick another name: a refused --nick ends chat with status 1
// before a line is sent under no name. A person at a terminal reads the
// refusal and goes on.
func sayFirst(ctx context.Context, send func(string) error, recv *chatReceiver, ui chatUI, o chatOptions) error {
	if o.nick != "" {
		if err := send(fmt.Sprintf(`<passerelle:nick name=%q/>`, o.nick)); err != nil {
			return fmt.Errorf("send nickname: %w", err)
		}
		if !ui.interactive() {
			if err := awaitNick(ctx, recv, o.nickWait); err != nil {
				return err
			}
		}
	}
	if o.room != "" {
		if err := send(fmt.Sprintf(`<passerelle:join room=%q/>`, o.room)); err != nil {
			return fmt.Errorf("join room: %w", err)
		}
	}
	return nil
}

// readLines reads input lines on a goroutine of its own, until the input
// ends (its error then goes to the second channel) or quit is closed.
func readLines(ui chatUI, quit <-chan struct{}) (<-chan string, <-chan error) {
	lines := make(chan string)
	inputEnd := make(chan error, 1)
	go func() {
		for {
			line, err := ui.ReadLine()
			if err != nil {
				inputEnd <- err
				return
			}
			select {
			case lines <- line:
			case <-quit:
				return
			}
		}
	}()
	return lines, inputEnd
}

// lingerFor waits d for the answers to what was sent, or less if chat is
// interrupted or the server leaves.
func lingerFor(ctx context.Context, recv *chatReceiver, d time.Duration, sent int) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-recv.done:
		if !errors.Is(recv.err, errServerClosed) {
			return fmt.Errorf("chat: %w", recv.err)
		}
		return closedError(sent, sent)
	}
	return nil
}

// awaitNick waits for the relay's answer to --nick, and returns an error
// when the nickname was refused or no answer came within wait.
func awaitNick(ctx context.Context, recv *chatReceiver, wait time.Duration) error {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case reply := <-recv.nick:
		if !reply.ok {
			return fmt.Errorf("chat: --nick %s", strings.TrimPrefix(termsafe.Escape(reply.text), "* "))
		}
		return nil
	case <-recv.done:
		if !errors.Is(recv.err, errServerClosed) {
			return fmt.Errorf("chat: %w", recv.err)
		}
		return fmt.Errorf("chat: %w before answering --nick", errServerClosed)
	case <-ctx.Done():
		return nil
	case <-t.C:
		return fmt.Errorf("chat: no answer to --nick within %s (--timeout): is this a passerelle relay?", wait)
	}
}

// Totals closedError takes when the input's length is not known.
const (
	inputGoesOn = -1 // a pipe that did not end soon after the close
	inputTyped  = -2 // a person typing: there is no total
)

// countRest reads what is left of a piped input, for a little while, and
// returns how many lines it held in all, or one of the totals above.
func countRest(ui chatUI, read int, lines <-chan string, inputEnd <-chan error) int {
	if ui.interactive() {
		return inputTyped
	}
	t := time.NewTimer(chatDrainWait)
	defer t.Stop()
	for {
		select {
		case <-lines:
			read++
		case <-inputEnd:
			return read
		case <-t.C:
			return inputGoesOn
		}
	}
}

// closedError says that the server closed the connection, after how many
// of the input's messages.
func closedError(sent, total int) error {
	switch {
	case total == inputTyped && sent == 0:
		return fmt.Errorf("chat: %w", errServerClosed)
	case total == inputTyped:
		return fmt.Errorf("chat: %w after %s", errServerClosed, messages(sent))
	case total == inputGoesOn:
		return fmt.Errorf("chat: %w after %s, before the end of the input", errServerClosed, messages(sent))
	case sent == total:
		// Written is not read: the server may have dropped the last ones.
		return fmt.Errorf("chat: %w after all %s were sent; the last ones may not have arrived", errServerClosed, messages(sent))
	}
	return fmt.Errorf("chat: %w after %d of %s", errServerClosed, sent, messages(total))
}

// messages spells a count of messages.
func messages(n int) string {
	if n == 1 {
		return "1 message"
	}
	return fmt.Sprintf("%d messages", n)
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
