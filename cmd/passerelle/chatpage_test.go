package main

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testbrowser"
)

// TestServeChatPageInBrowser opens the chat page of a real serve in
// headless chromium, which trusts the local CA through its own NSS
// database: a person on the page and a raw TLS client talk in both
// directions, and a message with markup shows as text.
func TestServeChatPageInBrowser(t *testing.T) {
	addr, pool, b := startChatPage(t)

	raw := dialTLS(t, addr, "localhost", pool)
	io.WriteString(raw, `<passerelle:join room="lobby"/>`+"\x00")
	if got := readFrames(t, raw, 1); !strings.HasPrefix(got[0], `<passerelle:joined room="lobby"`) {
		t.Fatalf("raw client join: %q", got)
	}

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

// startChatPage starts a serve with its default listeners and a headless
// chromium that trusts the serve's local CA; it returns the chat address
// (its page included), a pool trusting the same CA for raw clients, and
// the browser, which has opened no page yet.
func startChatPage(t *testing.T) (addr string, pool *x509.CertPool, b *testbrowser.Browser) {
	t.Helper()
	dataDir := t.TempDir()
	s := startServe(t, dataDir)
	pool, caFile := caPool(t, dataDir)
	b = testbrowser.Start(t, testbrowser.Options{TrustCAs: []*x509.Certificate{readCert(t, caFile)}})
	return s.addrs["chat"][0], pool, b
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

// TestChatPageLeavesOnPagehide: a tab that navigates away leaves the room
// at once, even when the browser keeps the page in its back/forward cache,
// so its nickname is free; coming back reconnects it under that nickname.
func TestChatPageLeavesOnPagehide(t *testing.T) {
	addr, pool, b := startChatPage(t)
	raw := dialTLS(t, addr, "localhost", pool)
	who := func() string {
		t.Helper()
		io.WriteString(raw, "<passerelle:who/>\x00")
		for {
			got := readFrames(t, raw, 1)[0]
			if strings.HasPrefix(got, "<passerelle:members ") {
				return got
			}
		}
	}
	const withAnn = `<passerelle:members room="default" count="2"><passerelle:member name="ann"/></passerelle:members>` + "\x00"
	const alone = `<passerelle:members room="default" count="1"></passerelle:members>` + "\x00"

	page := "https://localhost:" + portOf(addr) + "/?nick=ann"
	b.Navigate(page)
	b.WaitText("#members", "ann")
	if got := who(); got != withAnn {
		t.Fatalf("who with the page open: %q", got)
	}
	testbrowser.Eval[bool](b, `addEventListener("pageshow", (e) => { window.restoredFromCache = e.persisted; }); true`)
	// Another page of the same origin, as a person following a link.
	b.Navigate("https://localhost:" + portOf(addr) + "/elsewhere")
	var got string
	for deadline := time.Now().Add(waitTimeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got = who(); got == alone {
			break
		}
	}
	if got != alone {
		t.Fatalf("who after the page was left: %q, want %q", got, alone)
	}
	// Back: the page comes out of the cache and takes its nickname again.
	testbrowser.Eval[bool](b, `history.back(); true`)
	for deadline := time.Now().Add(waitTimeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got = who(); got == withAnn {
			break
		}
	}
	if got != withAnn {
		t.Fatalf("who after coming back: %q, want %q", got, withAnn)
	}
	// The case the page must handle: it came back from the cache, where
	// it had been kept alive; a reload would have proved nothing.
	if !testbrowser.Eval[bool](b, `window.restoredFromCache === true`) {
		t.Error("the page was not restored from the back/forward cache")
	}
	b.WaitText("#status", "over TLS")
}

// TestChatPageNickTaken: after the relay refuses a nickname, the box shows
// the nickname the page holds again, not the refused one; an empty box
// shows a placeholder that cannot be taken for a value.
func TestChatPageNickTaken(t *testing.T) {
	addr, pool, b := startChatPage(t)
	erin := dialTLS(t, addr, "localhost", pool)
	io.WriteString(erin, `<passerelle:nick name="erin"/>`+"\x00")
	readFrames(t, erin, 1)

	b.Navigate("https://localhost:" + portOf(addr) + "/")
	b.WaitText("#status", "over TLS")
	if ph := testbrowser.Eval[string](b, `document.getElementById("nick").placeholder`); ph != "your nickname" {
		t.Errorf("nickname placeholder %q", ph)
	}
	testbrowser.Eval[bool](b, `document.getElementById("nick").value = "ann"; document.getElementById("join").requestSubmit(); true`)
	b.WaitText("#log", "Your nickname is ann.")
	testbrowser.Eval[bool](b, `document.getElementById("nick").value = "erin"; document.getElementById("join").requestSubmit(); true`)
	b.WaitText("#log", `nick-taken: nickname "erin" is taken`)
	if v := testbrowser.Eval[string](b, `document.getElementById("nick").value`); v != "ann" {
		t.Errorf("after nick-taken the box shows %q, want the held nickname ann", v)
	}
}
