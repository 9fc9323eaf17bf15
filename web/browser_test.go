package web

import (
	"context"
	"crypto/x509"
	"encoding/xml"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/passerelle/passerelle/internal/testbrowser"
)

// wsRelay stands in for the chat relay behind the page: it accepts
// WebSocket upgrades on any path, hands each connection to the test, and
// serves the chat page to everything else, as a chat listener will.
type wsRelay struct {
	page  http.Handler
	conns chan *wsConn
}

// wsConn is one page's connection: the frames it sent, in order.
type wsConn struct {
	c      *websocket.Conn
	frames chan wsFrame
}

type wsFrame struct {
	typ  websocket.MessageType
	data string
}

func newWSRelay() *wsRelay {
	return &wsRelay{page: NewChatPage(), conns: make(chan *wsConn, 4)}
}

func (s *wsRelay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		s.page.ServeHTTP(w, r)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	wc := &wsConn{c: c, frames: make(chan wsFrame, 64)}
	s.conns <- wc
	defer close(wc.frames)
	for {
		typ, data, err := c.Read(context.Background())
		if err != nil {
			return
		}
		wc.frames <- wsFrame{typ, string(data)}
	}
}

func (s *wsRelay) next(t *testing.T) *wsConn {
	t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the page did not connect within 10s")
		return nil
	}
}

// expect reads the next frame and checks that it is one binary frame
// holding want and its NUL.
func (c *wsConn) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			t.Fatalf("connection closed while waiting for %q", want)
		}
		if f.typ != websocket.MessageBinary || f.data != want+"\x00" {
			t.Fatalf("frame = %v %q, want a binary frame %q", f.typ, f.data, want+"\x00")
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no frame within 10s, want %q", want)
	}
}

// send writes one message and its NUL as one binary frame.
func (c *wsConn) send(t *testing.T, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.c.Write(ctx, websocket.MessageBinary, []byte(msg+"\x00")); err != nil {
		t.Fatalf("send %q: %v", msg, err)
	}
}

// submit fills the form's inputs and submits it as a person would.
func submit(t *testing.T, b *testbrowser.Browser, form string, values map[string]string) {
	t.Helper()
	js := ""
	for id, v := range values {
		js += `document.getElementById(` + jsQuote(id) + `).value = ` + jsQuote(v) + `;`
	}
	js += `document.getElementById(` + jsQuote(form) + `).requestSubmit(); true`
	testbrowser.Eval[bool](b, js)
}

func jsQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\u2028", `\u2028`, "\u2029", `\u2029`)
	return `"` + r.Replace(s) + `"`
}

// TestChatPageInBrowser runs the chat page in headless chromium, over TLS
// trusted through the browser's own NSS database, against a WebSocket peer
// that speaks the relay's framing: the page's control messages and chat
// messages, what it shows of untrusted messages and member names, and its
// reconnection.
func TestChatPageInBrowser(t *testing.T) {
	start := time.Now()
	relay := newWSRelay()
	srv := serve(t, relay)
	b := testbrowser.Start(t, testbrowser.Options{TrustCAs: []*x509.Certificate{srv.ca.Cert}})
	b.Navigate(srv.url("/?nick=ann&room=lobby"))

	conn := relay.next(t)
	conn.expect(t, `<passerelle:nick name="ann"/>`)
	conn.expect(t, `<passerelle:join room="lobby"/>`)
	b.WaitText("#status", "Connected to wss://"+srv.addr+"/ over TLS")

	conn.send(t, `<passerelle:nick name="ann"/>`)
	conn.expect(t, `<passerelle:who/>`)
	conn.send(t, `<passerelle:joined room="lobby" members="3"/>`)
	conn.expect(t, `<passerelle:who/>`)
	b.WaitText("#log", "You are in room lobby (3 present).")
	b.WaitText("#room-name", "lobby")
	// A hostile nickname in the member list is text.
	conn.send(t, `<passerelle:members room="lobby" count="3"><passerelle:member name="&lt;img src=x onerror=alert(3)&gt;"/><passerelle:member name="ann"/></passerelle:members>`)
	b.WaitText("#members", "ann")
	members := testbrowser.Eval[[]string](b, `[...document.querySelectorAll("#members li")].map(li => li.textContent)`)
	if want := []string{"<img src=x onerror=alert(3)>", "ann", "1 without a nickname"}; strings.Join(members, "|") != strings.Join(want, "|") {
		t.Errorf("member list = %q, want %q", members, want)
	}

	// What a person types goes out as one binary frame with its NUL.
	submit(t, b, "send", map[string]string{"text": "hello"})
	conn.expect(t, "hello")
	b.WaitText("#log .mine", "annhello")

	// Untrusted messages are shown as text, never as markup.
	conn.send(t, `<img src=x onerror=alert(1)>`)
	conn.send(t, `<script>alert(2)</script>`)
	if err := conn.c.Write(context.Background(), websocket.MessageText, []byte("from a text frame\x00")); err != nil {
		t.Fatal(err)
	}
	b.WaitText("#log", "from a text frame")
	got := testbrowser.Eval[[]string](b, `[...document.querySelectorAll("#log li.msg")].map(li => li.textContent)`)
	if want := []string{"<img src=x onerror=alert(1)>", "<script>alert(2)</script>", "from a text frame"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("messages shown = %q, want %q", got, want)
	}
	if n := testbrowser.Eval[int](b, `document.querySelectorAll("img").length + document.querySelectorAll("script").length`); n != 1 {
		t.Errorf("the document holds %d img and script elements, want only the page's own script", n)
	}
	if d := b.Dialogs(); len(d) != 0 {
		t.Errorf("the page opened dialogs: %q", d)
	}

	// Nickname and room are escaped into the control messages.
	nick, room := `a"b<c&'d`, `x"y`
	submit(t, b, "join", map[string]string{"nick": nick, "room": room})
	conn.expect(t, `<passerelle:nick name="a&quot;b&lt;c&amp;&apos;d"/>`)
	conn.expect(t, `<passerelle:join room="x&quot;y"/>`)
	var el struct {
		Name string `xml:"name,attr"`
	}
	if err := xml.Unmarshal([]byte(`<passerelle:nick name="a&quot;b&lt;c&amp;&apos;d"/>`), &el); err != nil || el.Name != nick {
		t.Errorf("the escaped nickname reads back as %q (%v), want %q", el.Name, err, nick)
	}
	conn.send(t, `<passerelle:error code="bad-nick" command="nick">nickname may hold only letters, digits, spaces, '-', '_' and '.', not '"'</passerelle:error>`)
	b.WaitText("#log .error", `bad-nick: nickname may hold only letters, digits, spaces, '-', '_' and '.', not '"'`)
	// The box shows the nickname held again, not the refused one.
	if v := testbrowser.Eval[string](b, `document.getElementById("nick").value`); v != "ann" {
		t.Errorf("nickname box after the refusal: %q, want ann", v)
	}

	// The server goes away: the page says so and comes back by itself,
	// with the nickname it held and the room it asked for last.
	if err := conn.c.Close(websocket.StatusGoingAway, "server restart"); err != nil {
		t.Fatal(err)
	}
	b.WaitText("#status", "Disconnected (code 1001: server restart); reconnecting in")
	conn = relay.next(t)
	conn.expect(t, `<passerelle:nick name="ann"/>`)
	conn.expect(t, `<passerelle:join room="x&quot;y"/>`)
	b.WaitText("#status", "Connected to wss://")

	// The connection drops without a closing handshake: the same.
	if err := conn.c.CloseNow(); err != nil {
		t.Fatal(err)
	}
	b.WaitText("#status", "Disconnected (code 1006); reconnecting in")
	conn = relay.next(t)
	conn.expect(t, `<passerelle:nick name="ann"/>`)
	b.WaitText("#status", "Connected to wss://")

	// Nothing was fetched besides the page itself.
	if res := testbrowser.Eval[[]string](b, `performance.getEntriesByType("resource").map(e => e.name)`); len(res) != 0 {
		t.Errorf("the page loaded resources: %q", res)
	}
	if c := b.Console(); len(c) != 0 {
		t.Errorf("console: %q", c)
	}
	t.Logf("browser test took %v", time.Since(start))
}

// TestChatPagePlainInBrowser: a page served over plain HTTP connects with
// ws:// and says that the connection is not encrypted.
func TestChatPagePlainInBrowser(t *testing.T) {
	relay := newWSRelay()
	srv := servePlain(t, relay)
	b := testbrowser.Start(t, testbrowser.Options{})
	b.Navigate(srv.url("/"))
	conn := relay.next(t)
	conn.expect(t, `<passerelle:who/>`)
	b.WaitText("#status", "Connected to ws://"+srv.addr+"/ without TLS (not encrypted)")
}
