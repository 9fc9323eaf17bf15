package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
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
	if !strings.Contains(out, `<passerelle:joined room="lobby" members="2"/>`) {
		t.Fatalf("chat output does not show the join:\n%s", out)
	}
	// The seed client heard nothing of it.
	seed.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, _ := seed.Read(make([]byte, 1)); n != 0 {
		t.Fatal("a seed client received a control message")
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
