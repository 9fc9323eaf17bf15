package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/passerelle/passerelle/protocol/envoie"
)

// These tests drive the browser side of serve's listeners with a Go
// WebSocket client and net/http over real TLS on loopback: the same ports
// as raw clients, the framing both ways, and each refusal's close code.

// wsDial opens a WebSocket to a serve listener, over TLS with the local CA
// (wss) unless pool is nil (ws on a plain listener).
func wsDial(t *testing.T, addr string, pool *x509.CertPool, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	scheme := "ws"
	if pool != nil {
		scheme = "wss"
		d.TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: "localhost"}
	}
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	ws, resp, err := d.Dial(scheme+"://"+addr+"/", h)
	if err == nil {
		t.Cleanup(func() { ws.Close() })
	}
	return ws, resp, err
}

func mustWS(t *testing.T, addr string, pool *x509.CertPool) *websocket.Conn {
	t.Helper()
	ws, _, err := wsDial(t, addr, pool, "")
	if err != nil {
		t.Fatalf("websocket to %s: %v", addr, err)
	}
	return ws
}

// wsExpect reads frames and checks that each is one binary frame holding
// exactly the next message.
func wsExpect(t *testing.T, ws *websocket.Conn, msgs ...string) {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, want := range msgs {
		kind, got, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read, waiting for %q: %v", want, err)
		}
		if kind != websocket.BinaryMessage || string(got) != want {
			t.Fatalf("frame (type %d) %q, want one binary frame %q", kind, got, want)
		}
	}
}

func wsPing(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	ws.WriteMessage(websocket.BinaryMessage, []byte("<passerelle:ping/>\x00"))
	wsExpect(t, ws, "<passerelle:pong/>\x00")
}

// wsCloseCode reads until the server closes and returns its close code.
func wsCloseCode(t *testing.T, ws *websocket.Conn) int {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			t.Fatalf("read ended with %v, want a close frame", err)
		}
	}
}

func TestServeWebSocketChat(t *testing.T) {
	dataDir := t.TempDir()
	s := startServe(t, dataDir, "--plain-address", "127.0.0.1:0")
	pool, _ := caPool(t, dataDir)
	tlsChat, plainChat := s.addrs["chat"][0], s.addrs["chat"][1]

	// A raw TLS client, a raw plain one, a wss and a ws client: one room.
	raw := dialTLS(t, tlsChat, "localhost", pool)
	ping(t, raw)
	plain, err := net.Dial("tcp", plainChat)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ping(t, plain)
	wss := mustWS(t, tlsChat, pool)
	wsPing(t, wss)
	ws := mustWS(t, plainChat, nil)
	wsPing(t, ws)

	// Browser to server: frames are one byte stream cut at NUL, text or
	// binary: a message split across frames, several in one frame.
	wss.WriteMessage(websocket.BinaryMessage, []byte("hel"))
	wss.WriteMessage(websocket.TextMessage, []byte("lo\x00two\x00thr"))
	wss.WriteMessage(websocket.BinaryMessage, []byte("ee\x00"))
	want := []string{"hello\x00", "two\x00", "three\x00"}
	if got := readFrames(t, raw, 3); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("raw TLS client got %q, want %q", got, want)
	}
	if got := readFrames(t, plain, 3); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("plain client got %q, want %q", got, want)
	}
	// Server to browser: each message is one binary frame with its NUL,
	// however the raw sender cut or grouped them.
	wsExpect(t, ws, want...)
	io.WriteString(raw, "from raw\x00and ")
	io.WriteString(raw, "more\x00")
	wsExpect(t, wss, "from raw\x00", "and more\x00")
	wsExpect(t, ws, "from raw\x00", "and more\x00")
	readFrames(t, plain, 2)

	t.Run("oversized message", func(t *testing.T) {
		big := mustWS(t, tlsChat, pool)
		wsPing(t, big)
		big.WriteMessage(websocket.BinaryMessage, []byte(strings.Repeat("x", 64<<10)+"\x00"))
		if code := wsCloseCode(t, big); code != websocket.CloseMessageTooBig {
			t.Errorf("close code %d, want 1009", code)
		}
	})
	t.Run("invalid UTF-8 in a text frame", func(t *testing.T) {
		bad := mustWS(t, tlsChat, pool)
		wsPing(t, bad)
		bad.WriteMessage(websocket.TextMessage, []byte("caf\xc3"))
		bad.WriteMessage(websocket.TextMessage, []byte("\x28\x00"))
		if code := wsCloseCode(t, bad); code != websocket.CloseInvalidFramePayloadData {
			t.Errorf("close code %d, want 1007", code)
		}
		// A character cut between two binary frames is fine: only a text
		// frame's payload must be UTF-8 (RFC 6455 section 5.6).
		good := mustWS(t, tlsChat, pool)
		wsPing(t, good)
		good.WriteMessage(websocket.BinaryMessage, []byte("caf\xc3"))
		good.WriteMessage(websocket.BinaryMessage, []byte("\xa9\x00"))
		wsExpect(t, ws, "café\x00")
		readFrames(t, raw, 1)
		readFrames(t, plain, 1)
		wsExpect(t, wss, "café\x00")
	})
	t.Run("flood", func(t *testing.T) {
		f := mustWS(t, tlsChat, pool)
		wsPing(t, f)
		f.WriteMessage(websocket.BinaryMessage, []byte(strings.Repeat("spam\x00", 1000)))
		if code := wsCloseCode(t, f); code != websocket.ClosePolicyViolation {
			t.Errorf("close code %d, want 1008", code)
		}
		// The others drain what got through before the flood limit.
		for _, c := range []net.Conn{raw, plain} {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			io.Copy(io.Discard, io.LimitReader(c, 400*5))
		}
	})
	t.Run("origins", func(t *testing.T) {
		// The default, as the default policy file, allows every page.
		if _, resp, err := wsDial(t, tlsChat, pool, "https://game.example"); err != nil {
			t.Fatalf("origin refused by default: %v (%v)", err, resp)
		}
	})

	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if code := wsCloseCode(t, wss); code != websocket.CloseGoingAway {
		t.Errorf("close code at shutdown %d, want 1001", code)
	}
}

func TestServeWebSocketOriginRefused(t *testing.T) {
	dataDir := t.TempDir()
	cfg := writeConfig(t, dataDir, `websocket:
  origins: ["https://chat.example.org"]
listeners:
  - {address: "127.0.0.1:0", service: chat}
`)
	s := runServeCLI(t, []string{"--data-dir", dataDir, "--config", cfg, "serve"}, 1)
	pool, _ := caPool(t, dataDir)
	addr := s.addrs["chat"][0]
	_, resp, err := wsDial(t, addr, pool, "https://evil.example")
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a refused Origin got %v, %v; want 403", resp, err)
	}
	if _, _, err := wsDial(t, addr, pool, "https://chat.example.org"); err != nil {
		t.Fatalf("the allowed origin: %v", err)
	}
	if _, _, err := wsDial(t, addr, pool, ""); err != nil {
		t.Fatalf("a client without Origin (not a browser): %v", err)
	}
	waitLog(t, s, `msg="origin refused" listener=127.0.0.1:0 service=chat remote_addr=127.0.0.1:`)
	waitLog(t, s, `origin=https://evil.example path=/ reason=origin_not_allowed`)
}

func waitLog(t *testing.T, s *served, want string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(s.errOut.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q in:\n%s", want, s.errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeBrowserAssets(t *testing.T) {
	dataDir := t.TempDir()
	s := startServe(t, dataDir)
	pool, _ := caPool(t, dataDir)
	addr := s.addrs["envoie"][0]
	f, _ := envoie.Samples().Open("bienvenue.txt")
	want, _ := io.ReadAll(f)
	f.Close()

	// HTTPS: GET /NAME on the asset port.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	resp, err := hc.Get("https://localhost:" + portOf(addr) + "/bienvenue.txt")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != string(want) || resp.Proto != "HTTP/1.1" {
		t.Fatalf("GET: %s %s, %d bytes; want 200 over HTTP/1.1 and the %d bytes of the sample", resp.Proto, resp.Status, len(body), len(want))
	}
	for _, name := range []string{"/../etc/passwd", "/nope.txt"} {
		resp, err := hc.Get("https://localhost:" + portOf(addr) + name)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("GET %s: %s, want 404", name, resp.Status)
		}
	}

	// ENVOIE over a WebSocket: the request in frames of any size, the
	// response a byte stream over binary frames.
	ws := mustWS(t, addr, pool)
	ws.WriteMessage(websocket.TextMessage, []byte("ENVOIE bien"))
	ws.WriteMessage(websocket.BinaryMessage, []byte("venue.txt\n"))
	var got []byte
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < 4 || len(got) < 4+int(binary.BigEndian.Uint32(got)) {
		kind, p, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		if kind != websocket.BinaryMessage {
			t.Fatalf("frame type %d, want binary", kind)
		}
		got = append(got, p...)
	}
	if n := binary.BigEndian.Uint32(got); int(n) != len(want) || string(got[4:]) != string(want) {
		t.Fatalf("ENVOIE over WebSocket: length %d, %q; want %d bytes of the sample", n, got[4:], len(want))
	}

	// The raw protocol still works on the same port.
	out := filepath.Join(t.TempDir(), "b.txt")
	if _, stderr, err := runCLI(t, "--data-dir", dataDir, "get", addr, "bienvenue.txt", "-o", out); err != nil {
		t.Fatalf("get: %v\n%s", err, stderr)
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// TestServeUnfinishedUpgradeClosed: a client that starts an HTTP request
// (a WebSocket upgrade) and never finishes it is closed at the handshake
// timeout, like one that never finishes its TLS handshake.
func TestServeUnfinishedUpgradeClosed(t *testing.T) {
	dataDir := t.TempDir()
	cfg := writeConfig(t, dataDir, `limits:
  handshake_timeout: 300ms
listeners:
  - {address: "127.0.0.1:0", service: chat}
`)
	s := runServeCLI(t, []string{"--data-dir", dataDir, "--config", cfg, "serve"}, 1)
	pool, _ := caPool(t, dataDir)
	c, err := tls.Dial("tcp", s.addrs["chat"][0], &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || len(got) != 0 {
		t.Fatalf("unfinished upgrade read %q, %v; want the connection closed", got, err)
	}
}
