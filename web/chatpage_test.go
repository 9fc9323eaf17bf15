package web

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestChatPageHTTP(t *testing.T) {
	page := NewChatPage()
	srv := serve(t, page)
	req := func(method, target string, headers ...string) string {
		s := method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
		for _, h := range headers {
			s += h + "\r\n"
		}
		return s + "\r\n"
	}

	resp, body := srv.raw(t, req("GET", "/"))
	if resp.StatusCode != 200 {
		t.Fatalf("GET /: status %d", resp.StatusCode)
	}
	for k, v := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Content-Length":         strconv.Itoa(len(body)),
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
		"Cache-Control":          "no-cache",
	} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	// The policy allows the page's own inline style and script, by digest,
	// and connections back to this origin; nothing else.
	inline := func(tag string) string {
		m := regexp.MustCompile(`(?s)<`+tag+`>(.*?)</`+tag+`>`).FindAllStringSubmatch(body, -1)
		if len(m) != 1 {
			t.Fatalf("%d <%s> elements in the page, want 1", len(m), tag)
		}
		sum := sha256.Sum256([]byte(m[0][1]))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	wantCSP := "default-src 'none'; style-src " + inline("style") + "; script-src " + inline("script") +
		"; connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	if got := resp.Header.Get("Content-Security-Policy"); got != wantCSP {
		t.Errorf("Content-Security-Policy:\n got %s\nwant %s", got, wantCSP)
	}
	// Nothing is loaded from elsewhere: no src or href attributes, no
	// external URL at all besides the WebSocket schemes it builds.
	for _, bad := range []string{"src=", "href=", "http://", "https://", "<link", "@import", "url("} {
		if strings.Contains(body, bad) {
			t.Errorf("the page contains %q", bad)
		}
	}
	tag := resp.Header.Get("ETag")
	if tag == "" {
		t.Fatal("no ETag")
	}

	tests := []struct {
		name    string
		request string
		status  int
		body    string
		headers map[string]string
	}{
		{"HEAD", req("HEAD", "/"), 200, "", map[string]string{"Content-Length": strconv.Itoa(len(body))}},
		{"If-None-Match", req("GET", "/", "If-None-Match: "+tag), 304, "", nil},
		{"query", req("GET", "/?nick=ann&room=lobby"), 200, body, nil},
		{"other path", req("GET", "/chat.js"), 404, "404 not found: the chat page is at /\n", nil},
		{"POST", req("POST", "/", "Content-Length: 0"), 405, "405 method not allowed: use GET or HEAD\n",
			map[string]string{"Allow": "GET, HEAD"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, got := srv.raw(t, tc.request)
			if resp.StatusCode != tc.status || got != tc.body {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, clip(got, 80), tc.status, clip(tc.body, 80))
			}
			for k, v := range tc.headers {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestLimits checks the limits an http.Server gets from ApplyLimits: a
// request whose headers pass MaxHeaderBytes is refused with 431.
func TestLimits(t *testing.T) {
	srv := &http.Server{ReadHeaderTimeout: 3}
	ApplyLimits(srv)
	if srv.MaxHeaderBytes != maxHeaderBytes || srv.ReadHeaderTimeout != 3 || srv.IdleTimeout != idleTimeout {
		t.Errorf("ApplyLimits: MaxHeaderBytes %d, ReadHeaderTimeout %v, IdleTimeout %v",
			srv.MaxHeaderBytes, srv.ReadHeaderTimeout, srv.IdleTimeout)
	}

	s := serve(t, NewChatPage())
	big := "X-Big: " + strings.Repeat("a", maxHeaderBytes+4096)
	resp, _ := s.raw(t, "GET / HTTP/1.1\r\nHost: x\r\n"+big+"\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized headers: status %d, want 431", resp.StatusCode)
	}
	resp, _ = s.raw(t, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Small: "+strings.Repeat("a", 4096)+"\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Errorf("4 KiB of headers: status %d, want 200", resp.StatusCode)
	}
}
