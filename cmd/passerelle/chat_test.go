package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/protocol/xmlsocket"
)

// TestChatCommand drives `passerelle chat` in-process against a running
// serve: lines typed become messages, messages heard become lines, and the
// local CA of the data folder is trusted without flags.
func TestChatCommand(t *testing.T) {
	dataDir := t.TempDir()
	s := startServe(t, dataDir)
	pool, _ := caPool(t, dataDir)
	addr := strings.Replace(s.addrs["chat"][0], "127.0.0.1", "localhost", 1)
	peer := dialTLS(t, s.addrs["chat"][0], "localhost", pool)
	ping(t, peer)

	stdin, typing := io.Pipe()
	out := &testutil.Buffer{}
	errOut := &testutil.Buffer{}
	cmd := newRootCmd(context.Background(), stdin, out, errOut)
	cmd.SetArgs([]string{"--data-dir", dataDir, "chat", addr, "--linger", "200ms"})
	done := make(chan error, 1)
	go func() { done <- cmd.Execute() }()

	io.WriteString(typing, "hello\n")
	if got := readFrames(t, peer, 1); got[0] != "hello\x00" {
		t.Fatalf("peer got %q, want the typed line as one message", got)
	}
	io.WriteString(peer, "<b>welcome</b>\x00")
	testutil.EventuallyContains(t, out, "<b>welcome</b>\n", waitTimeout)
	typing.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("chat: %v\n%s", err, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("chat did not end after its input ended")
	}
}

// TestChatRooms checks that --room and --nick put the client in a room of
// its own, away from seed clients.
func TestChatRooms(t *testing.T) {
	dataDir := t.TempDir()
	s := startServe(t, dataDir)
	pool, _ := caPool(t, dataDir)
	seed := dialTLS(t, s.addrs["chat"][0], "localhost", pool)
	ping(t, seed)
	member := dialTLS(t, s.addrs["chat"][0], "localhost", pool)
	io.WriteString(member, `<passerelle:join room="lobby"/>`+"\x00")
	if got := readFrames(t, member, 1); got[0] != `<passerelle:joined room="lobby" members="1"/>`+"\x00" {
		t.Fatalf("join answered %q", got)
	}

	out, errOut, err := runCLI(t, "--data-dir", dataDir, "chat", s.addrs["chat"][0], "--servername", "localhost",
		"--room", "lobby", "--nick", "ann", "--linger", "100ms")
	_ = errOut
	if err != nil {
		t.Fatal(err)
	}
	if want := "* your nickname is \"ann\"\n* you are in room \"lobby\" (2 members)\n"; out != want {
		t.Fatalf("chat output %q, want the replies in words: %q", out, want)
	}
	// The seed client heard nothing of it.
	seed.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, _ := seed.Read(make([]byte, 1)); n != 0 {
		t.Fatal("a seed client received a control message")
	}
}

// TestChatNickRefused: the relay's replies are shown in words, not as XML
// with entities, and a --nick the relay refuses ends a piped chat with
// status 1 and the reason, before any line is sent.
func TestChatNickRefused(t *testing.T) {
	dataDir := t.TempDir()
	s := startServe(t, dataDir)
	pool, _ := caPool(t, dataDir)
	erin := dialTLS(t, s.addrs["chat"][0], "localhost", pool)
	io.WriteString(erin, `<passerelle:nick name="erin"/>`+"\x00")
	readFrames(t, erin, 1)

	out, _, err := runCLIInput(t, "hello\n", "--data-dir", dataDir, "chat", s.addrs["chat"][0], "--nick", "Erin")
	if err == nil || err.Error() != `chat: --nick refused (nick-taken): nickname "Erin" is taken ("erin" reads the same)` || exitCode(err) != 1 {
		t.Fatalf("error %v (exit %d), want the refusal and status 1", err, exitCode(err))
	}
	if want := `* refused (nick-taken): nickname "Erin" is taken ("erin" reads the same)` + "\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	erin.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _ := erin.Read(make([]byte, 64)); n != 0 {
		t.Error("a line was sent after the nickname was refused")
	}

	out, _, err = runCLIInput(t, "<passerelle:who/>\n<passerelle:ping/>\n<passerelle:join room=\"\"/>\n", "--data-dir", dataDir,
		"chat", s.addrs["chat"][0], "--nick", "fred", "--linger", "300ms")
	want := "* your nickname is \"fred\"\n" +
		"* room \"default\": 2 members; nicknames: \"erin\", \"fred\"\n" +
		"* pong\n" +
		"* refused (bad-room): room must not be empty\n"
	if err != nil || out != want {
		t.Errorf("chat: %v, output\n%s\nwant\n%s", err, out, want)
	}
}

// TestChatErrors checks the exact message of each bad invocation.
func TestChatErrors(t *testing.T) {
	dataDir := t.TempDir()
	s := startServe(t, dataDir)
	other := t.TempDir() // a data folder whose CA the server does not use
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no address", []string{"chat"}, "chat needs the relay's address, as HOST:PORT (got 0 argument(s))"},
		{"not host:port", []string{"chat", "localhost"}, `address "localhost": want HOST:PORT`},
		{"missing CA file", []string{"chat", s.addrs["chat"][0], "--ca", "/nonexistent.pem"}, "--ca: open /nonexistent.pem: no such file or directory"},
		{"untrusted server", []string{"--data-dir", other, "chat", s.addrs["chat"][0]}, "connect to " + s.addrs["chat"][0] + ": certificate status untrustedSigners: "},
		{"name mismatch", []string{"--data-dir", dataDir, "chat", s.addrs["chat"][0], "--servername", "chat.example.org"}, "connect to " + s.addrs["chat"][0] + ": certificate status principalMismatch: "},
		{"negative rate", []string{"chat", s.addrs["chat"][0], "--rate", "-1"}, "--rate -1: want 0 (no pacing), or from 0.001 to 1e+06 messages a second"},
		{"rate not a number", []string{"chat", s.addrs["chat"][0], "--rate", "NaN"}, "--rate NaN: want 0 (no pacing), or from 0.001 to 1e+06 messages a second"},
		{"rate too low", []string{"chat", s.addrs["chat"][0], "--rate", "1e-9"}, "--rate 1e-09: want 0 (no pacing), or from 0.001 to 1e+06 messages a second"},
		{"zero timeout", []string{"chat", s.addrs["chat"][0], "--timeout", "0s"}, "--timeout 0s: must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCLI(t, tt.args...)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to start with %q", err, tt.want)
			}
		})
	}
}

// TestChatEscapesHostileMessages sends, through a real relay, the bytes
// that cleared the screen and retitled the window of issue 10: chat prints
// them escaped, one message per line.
func TestChatEscapesHostileMessages(t *testing.T) {
	dataDir := t.TempDir()
	s := startServe(t, dataDir)
	pool, _ := caPool(t, dataDir)
	peer := dialTLS(t, s.addrs["chat"][0], "localhost", pool)
	ping(t, peer)

	stdin, typing := io.Pipe()
	defer typing.Close()
	out := &testutil.Buffer{}
	cmd := newRootCmd(context.Background(), stdin, out, &testutil.Buffer{})
	cmd.SetArgs([]string{"--data-dir", dataDir, "chat", s.addrs["chat"][0], "--servername", "localhost", "--linger", "100ms"})
	done := make(chan error, 1)
	go func() { done <- cmd.Execute() }()
	io.WriteString(typing, "ready\n")
	readFrames(t, peer, 1) // chat is in the room

	io.WriteString(peer, "\033[2J\033]2;owned\007\x00line one\nline two\r\u009b31m\u202eevil\xff\x00")
	want := `\x1b[2J\x1b]2;owned\x07` + "\n" + `line one\nline two\r\u009b31m\u202eevil\xff` + "\n"
	testutil.EventuallyContains(t, out, want, waitTimeout)
	typing.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
}

// TestChatPipeIsPaced pipes more lines than the relay's flood burst into
// chat with the default --rate: the relay takes every one, in order, and
// chat exits 0. Without pacing the relay cuts the sender, and chat says so
// and fails (issue 10, item 12: it exited 0 with 400 of 500 delivered).
func TestChatPipeIsPaced(t *testing.T) {
	const n = 500
	var input strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&input, "%d\n", i)
	}
	dataDir := t.TempDir()
	s := startServe(t, dataDir)
	pool, _ := caPool(t, dataDir)

	t.Run("default rate", func(t *testing.T) {
		peer := dialTLS(t, s.addrs["chat"][0], "localhost", pool)
		ping(t, peer)
		start := time.Now()
		var out, errOut bytes.Buffer
		cmd := newRootCmd(context.Background(), strings.NewReader(input.String()), &out, &errOut)
		cmd.SetArgs([]string{"--data-dir", dataDir, "chat", s.addrs["chat"][0], "--servername", "localhost", "--linger", "100ms"})
		if err := cmd.Execute(); err != nil {
			t.Fatalf("chat: %v\n%s", err, errOut.String())
		}
		// n messages spaced 1/200 s apart take (n-1)/200 s.
		if took, least := time.Since(start), time.Duration(n-1)*time.Second/chatDefaultRate; took < least {
			t.Errorf("%d messages took %s, less than the %s the pacing needs", n, took, least)
		}
		peer.SetReadDeadline(time.Now().Add(waitTimeout))
		r := xmlsocket.NewReader(peer, 1<<10)
		for i := 1; i <= n; i++ {
			f, err := r.ReadFrame()
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if want := fmt.Sprintf("%d\x00", i); string(f) != want {
				t.Fatalf("message %d is %q", i, f)
			}
		}
	})
	t.Run("no pacing", func(t *testing.T) {
		// Four times the burst, so that even a slow writer outruns the limit.
		flood := strings.Repeat("x\n", 1600)
		_, _, err := runCLIInput(t, flood, "--data-dir", dataDir, "chat", s.addrs["chat"][0],
			"--servername", "localhost", "--linger", "2s", "--rate", "0")
		if err == nil || !strings.HasPrefix(err.Error(), "chat: the server closed the connection after ") {
			t.Fatalf("got %v, want the server's close reported", err)
		}
		t.Log(err)
	})
}

// runCLIInput is runCLI with a standard input.
func runCLIInput(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCmd(context.Background(), strings.NewReader(stdin), &out, &errOut)
	cmd.SetArgs(args)
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

// closingRelay is a plain XMLSocket server that reads n messages from each
// client and then closes the connection, as the relay does to a client it
// cuts off.
func closingRelay(t *testing.T, n int) string {
	t.Helper()
	ln := testutil.Listen(t)
	wait := testutil.Serve(ln, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(waitTimeout))
		r := xmlsocket.NewReader(c, 1<<10)
		for range n {
			if _, err := r.ReadFrame(); err != nil {
				return
			}
		}
	})
	t.Cleanup(func() { ln.Close(); wait() })
	return ln.Addr().String()
}

// TestChatServerClosesFirst checks the exact message when the server
// closes the connection before the input is all sent, and the exit status.
func TestChatServerClosesFirst(t *testing.T) {
	addr := closingRelay(t, 3)
	t.Run("the input ends", func(t *testing.T) {
		// 5 a second: the close after the 3rd is seen long before the 4th is due.
		_, _, err := runCLIInput(t, "1\n2\n3\n4\n5\n", "chat", addr, "--plain", "--rate", "5")
		if want := "chat: the server closed the connection after 3 of 5 messages"; err == nil || err.Error() != want {
			t.Fatalf("got %v, want %s", err, want)
		}
		if exitCode(err) != 1 {
			t.Fatalf("exit code %d", exitCode(err))
		}
	})
	t.Run("the input goes on", func(t *testing.T) {
		stdin, typing := io.Pipe()
		defer typing.Close()
		go io.WriteString(typing, "1\n2\n3\n4\n")
		cmd := newRootCmd(context.Background(), stdin, io.Discard, io.Discard)
		cmd.SetArgs([]string{"chat", addr, "--plain", "--rate", "5"})
		err := cmd.Execute()
		if want := "chat: the server closed the connection after 3 messages, before the end of the input"; err == nil || err.Error() != want {
			t.Fatalf("got %v, want %s", err, want)
		}
	})
	t.Run("while lingering", func(t *testing.T) {
		_, _, err := runCLIInput(t, "1\n2\n3\n", "chat", addr, "--plain", "--linger", "5s")
		if want := "chat: the server closed the connection after all 3 messages were sent; the last ones may not have arrived"; err == nil || err.Error() != want {
			t.Fatalf("got %v, want %s", err, want)
		}
	})
}

// TestChatTimeout points chat at a listener that accepts the connection
// and never says a word: --timeout ends the wait for the handshake.
func TestChatTimeout(t *testing.T) {
	silent := testutil.Listen(t) // the kernel accepts; nobody answers
	addr := silent.Addr().String()
	start := time.Now()
	_, _, err := runCLI(t, "--data-dir", t.TempDir(), "chat", addr, "--timeout", "300ms")
	if want := "connect to " + addr + ": the TLS handshake did not finish within 300ms (--timeout)"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("gave up after %s", took)
	}
}

// screen is a small terminal emulator: enough of VT100 (printable text, CR,
// LF, cursor moves, erase in line and display, OSC strings) to see what a
// person would see from what the line editor writes.
type screen struct {
	mu         sync.Mutex
	width      int
	rows       [][]rune
	x, y       int
	esc        []byte // an escape sequence being read
	inOSC      bool
	titleSetTo string
}

func newScreen(width int) *screen { return &screen{width: width, rows: [][]rune{nil}} }

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range string(p) {
		s.put(r)
	}
	return len(p), nil
}

func (s *screen) put(r rune) {
	switch {
	case s.inOSC:
		if r == '\a' {
			s.inOSC = false
		} else {
			s.titleSetTo += string(r)
		}
		return
	case s.esc != nil:
		s.esc = append(s.esc, string(r)...)
		if len(s.esc) == 1 {
			if r == ']' {
				s.esc, s.inOSC, s.titleSetTo = nil, true, ""
			} else if r != '[' {
				s.esc = nil
			}
			return
		}
		if r >= '@' && r <= '~' {
			s.csi(string(s.esc[1:len(s.esc)-1]), r)
			s.esc = nil
		}
		return
	}
	switch r {
	case 0x1b:
		s.esc = []byte{}
	case '\r':
		s.x = 0
	case '\n':
		s.y++
		for len(s.rows) <= s.y {
			s.rows = append(s.rows, nil)
		}
	default:
		if s.x >= s.width {
			s.x = 0
			s.put('\n')
		}
		row := s.rows[s.y]
		for len(row) <= s.x {
			row = append(row, ' ')
		}
		row[s.x] = r
		s.rows[s.y] = row
		s.x++
	}
}

func (s *screen) csi(param string, final rune) {
	n := 1
	fmt.Sscanf(param, "%d", &n)
	switch final {
	case 'A':
		s.y = max(0, s.y-n)
	case 'B':
		s.y += n
		for len(s.rows) <= s.y {
			s.rows = append(s.rows, nil)
		}
	case 'C':
		s.x += n
	case 'D':
		s.x = max(0, s.x-n)
	case 'K':
		if s.x < len(s.rows[s.y]) {
			s.rows[s.y] = s.rows[s.y][:s.x]
		}
	case 'J':
		s.rows, s.x, s.y = [][]rune{nil}, 0, 0
	case 'H':
		s.x, s.y = 0, 0
	}
}

// text is the screen's lines (trailing spaces cut) and the cursor.
func (s *screen) text() (lines []string, x, y int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rows {
		lines = append(lines, strings.TrimRight(string(r), " "))
	}
	return lines, s.x, s.y
}

func (s *screen) waitFor(t *testing.T, want []string, x, y int) {
	t.Helper()
	testutil.EventuallyReport(t, waitTimeout, func() bool {
		lines, cx, cy := s.text()
		return slices.Equal(lines, want) && cx == x && cy == y
	}, func() string {
		lines, cx, cy := s.text()
		return fmt.Sprintf("screen %q, cursor (%d,%d)\nwant   %q, cursor (%d,%d)", lines, cx, cy, want, x, y)
	})
}

// TestScreen checks the emulator on what an attack does to a terminal.
func TestScreen(t *testing.T) {
	s := newScreen(80)
	s.Write([]byte("old\r\nline\x1b[2J\x1b]2;owned\x07> hel\x1b[2Dxy\x1b[K"))
	lines, x, y := s.text()
	if !slices.Equal(lines, []string{"> hxy"}) || x != 5 || y != 0 || s.titleSetTo != "2;owned" {
		t.Fatalf("screen %q, cursor (%d,%d), title %q", lines, x, y, s.titleSetTo)
	}
}

// TestChatTerminalKeepsTypedLine drives the interactive client through a
// fake terminal: a message that arrives while a line is half typed is
// printed above it, the prompt and the typed text are drawn again, and
// typing goes on where it was.
func TestChatTerminalKeepsTypedLine(t *testing.T) {
	dataDir := t.TempDir()
	s := startServe(t, dataDir)
	pool, _ := caPool(t, dataDir)
	peer := dialTLS(t, s.addrs["chat"][0], "localhost", pool)
	ping(t, peer)
	conn := dialTLS(t, s.addrs["chat"][0], "localhost", pool)

	keys, typing := io.Pipe()
	defer typing.Close()
	scr := newScreen(80)
	ui := newTermUI(struct {
		io.Reader
		io.Writer
	}{keys, scr}, func() (int, int, error) { return 80, 24, nil })
	done := make(chan error, 1)
	go func() {
		done <- runChat(context.Background(), conn, ui, chatOptions{linger: 100 * time.Millisecond, maxMessage: 1 << 16, rate: chatDefaultRate})
	}()

	scr.waitFor(t, []string{">"}, 2, 0)
	io.WriteString(typing, "hi\r")
	if got := readFrames(t, peer, 1); got[0] != "hi\x00" {
		t.Fatalf("peer got %q", got)
	}
	io.WriteString(typing, "hel")
	scr.waitFor(t, []string{"> hi", "> hel"}, 5, 1)

	io.WriteString(peer, "\033[2J\033]2;owned\007bonjour\x00")
	scr.waitFor(t, []string{"> hi", `\x1b[2J\x1b]2;owned\x07bonjour`, "> hel"}, 5, 2)
	io.WriteString(peer, "ça va ?\x00")
	scr.waitFor(t, []string{"> hi", `\x1b[2J\x1b]2;owned\x07bonjour`, "ça va ?", "> hel"}, 5, 3)

	io.WriteString(typing, "lo\r")
	if got := readFrames(t, peer, 1); got[0] != "hello\x00" {
		t.Fatalf("peer got %q: the typed line was broken", got)
	}
	scr.waitFor(t, []string{"> hi", `\x1b[2J\x1b]2;owned\x07bonjour`, "ça va ?", "> hello", ">"}, 2, 4)

	io.WriteString(typing, "\x04") // Ctrl-D on an empty line leaves
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The prompt is erased on the way out, for the shell's own.
	scr.waitFor(t, []string{"> hi", `\x1b[2J\x1b]2;owned\x07bonjour`, "ça va ?", "> hello", ""}, 0, 4)
}

// TestChatTerminalServerCloses: at a terminal there is no input to count;
// the message says how many lines were sent, and the prompt is erased.
func TestChatTerminalServerCloses(t *testing.T) {
	conn, err := net.Dial("tcp", closingRelay(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	keys, typing := io.Pipe()
	defer typing.Close()
	scr := newScreen(80)
	ui := newTermUI(struct {
		io.Reader
		io.Writer
	}{keys, scr}, func() (int, int, error) { return 80, 24, nil })
	done := make(chan error, 1)
	go func() { done <- runChat(context.Background(), conn, ui, chatOptions{maxMessage: 1 << 16}) }()
	io.WriteString(typing, "bye\rnot sent")
	select {
	case err := <-done:
		if want := "chat: the server closed the connection after 1 message"; err == nil || err.Error() != want {
			t.Fatalf("got %v, want %s", err, want)
		}
	case <-time.After(waitTimeout):
		t.Fatal("chat did not notice the server closing")
	}
	scr.waitFor(t, []string{"> bye", ""}, 0, 1)
}
