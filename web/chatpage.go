package web

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// The page is kept in three files for editing and served as one document:
// nothing is fetched after it, not even from this server.
var (
	//go:embed page/chat.html
	chatHTML string
	//go:embed page/chat.css
	chatCSS string
	//go:embed page/chat.js
	chatJS string
)

// ChatPage serves the chat page at "/" (GET and HEAD). Other paths get
// 404, other methods 405. Build it with NewChatPage.
//
// The page opens a WebSocket to the address it was loaded from (wss:// when
// it came over https, ws:// otherwise), so the listener that serves it must
// hand WebSocket upgrades on that address to the chat relay.
type ChatPage struct {
	body []byte
	etag string
	csp  string
}

// NewChatPage assembles the page and its Content-Security-Policy.
func NewChatPage() *ChatPage {
	// The policy allows exactly the inline style and script of this page
	// (by digest), and connections back to this origin (CSP3 'self'
	// covers ws: and wss: on the same host and port): even a message
	// inserted as HTML by mistake could not run script or load anything.
	body := strings.Replace(chatHTML, "/*STYLE*/", chatCSS, 1)
	body = strings.Replace(body, "/*SCRIPT*/", chatJS, 1)
	sum := sha256.Sum256([]byte(body))
	return &ChatPage{
		body: []byte(body),
		etag: `"` + hex.EncodeToString(sum[:16]) + `"`,
		csp: "default-src 'none'; " +
			"style-src '" + cspHash(chatCSS) + "'; " +
			"script-src '" + cspHash(chatJS) + "'; " +
			"connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	}
}

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// ServeHTTP serves one request.
func (p *ChatPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.Error(w, "404 not found: the chat page is at /", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed: use GET or HEAD", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", p.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", p.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(p.body))
}
