package main

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/passerelle/passerelle/internal/testbrowser"
)

// TestServeChatPageInBrowser opens the chat page of a real serve in
// headless chromium, which trusts the local CA through its own NSS
// database: a person on the page and a raw TLS client talk in both
// directions, and a message with markup shows as text.
func TestServeChatPageInBrowser(t *testing.T) {
	dataDir := t.TempDir()
	s := startServe(t, dataDir)
	pool, caFile := caPool(t, dataDir)
	addr := s.addrs["chat"][0]

	raw := dialTLS(t, addr, "localhost", pool)
	io.WriteString(raw, `<passerelle:join room="lobby"/>`+"\x00")
	if got := readFrames(t, raw, 1); !strings.HasPrefix(got[0], `<passerelle:joined room="lobby"`) {
		t.Fatalf("raw client join: %q", got)
	}

	b := testbrowser.Start(t, testbrowser.Options{TrustCAs: []*x509.Certificate{readCert(t, caFile)}})
	b.Navigate("https://localhost:" + portOf(addr) + "/?nick=ann&room=lobby")
	b.WaitText("#status", "over TLS")
	b.WaitText("#room-name", "lobby")

	// Page to raw client.
	testbrowser.Eval[bool](b, `document.getElementById("text").value = "bonjour from the page"; document.getElementById("send").requestSubmit(); true`)
	for {
		got := readFrames(t, raw, 1)[0]
		if got == "bonjour from the page\x00" {
			break
		}
		if !strings.HasPrefix(got, "<passerelle:") {
			t.Fatalf("raw client got %q, want the page's message", got)
		}
	}
	// Raw client to page, markup included: shown as text, never run.
	io.WriteString(raw, `<img src=x onerror="document.title='owned'">hello`+"\x00")
	b.WaitText("#log", `<img src=x onerror="document.title='owned'">hello`)
	if n := testbrowser.Eval[int](b, `document.querySelectorAll("#log img").length`); n != 0 {
		t.Fatalf("the page made %d img element(s) out of a message", n)
	}
	if title := testbrowser.Eval[string](b, `document.title`); title == "owned" {
		t.Fatal("a relayed message ran script in the page")
	}
}

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", file)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
