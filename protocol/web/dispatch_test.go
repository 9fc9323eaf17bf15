package web

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestSniff tells HTTP from the raw protocols by the first bytes, however
// they are cut, and hands every byte on.
func TestSniff(t *testing.T) {
	tests := []struct {
		name   string
		alpn   string
		writes []string
		want   bool
		first  string // what the service then reads
	}{
		{"websocket upgrade", "", []string{"GET / HTTP/1.1\r\n"}, true, "GET / HTTP/1.1\r\n"},
		{"request line cut", "", []string{"GE", "T /x HTTP/1.1\r\n"}, true, "GET /x HTTP/1.1\r\n"},
		{"HEAD", "", []string{"HEAD /a HTTP/1.1\r\n"}, true, "HEAD /a HTTP/1.1\r\n"},
		{"OPTIONS", "", []string{"OPTIONS * HTTP/1.1\r\n"}, true, "OPTIONS * HTTP/1.1\r\n"},
		{"ALPN http/1.1, nothing read", "http/1.1", nil, true, ""},
		{"chat message", "", []string{"hello\x00"}, false, "hello\x00"},
		{"chat message starting like a method", "", []string{"GETTING there\x00"}, false, "GETTING there\x00"},
		{"ENVOIE request", "", []string{"ENVOIE a.txt\n"}, false, "ENVOIE a.txt\n"},
		{"silent listener", "", nil, false, ""},
		{"other ALPN", "xmpp", []string{"<stream>"}, false, "<stream>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			defer server.Close()
			go func() {
				for _, w := range tt.writes {
					client.Write([]byte(w))
				}
			}()
			next, isHTTP := Sniff(server, tt.alpn, 200*time.Millisecond)
			if isHTTP != tt.want {
				t.Fatalf("HTTP = %v, want %v", isHTTP, tt.want)
			}
			if tt.first == "" {
				return
			}
			got := make([]byte, len(tt.first))
			next.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(next, got); err != nil || string(got) != tt.first {
				t.Fatalf("service read %q, %v; want %q", got, err, tt.first)
			}
		})
	}
}

// TestValidUTF8Streaming: a text message's payload is checked as UTF-8
// across the reads it arrives in.
func TestValidUTF8Streaming(t *testing.T) {
	tests := []struct {
		name  string
		reads []string
		ok    bool
		open  bool // an incomplete sequence is pending at the end
	}{
		{"ascii", []string{"hello"}, true, false},
		{"cut in a two-byte sequence", []string{"caf\xc3", "\xa9"}, true, false},
		{"cut in a four-byte sequence", []string{"\xf0\x9f", "\x98", "\x80!"}, true, false},
		{"incomplete at the end", []string{"caf\xc3"}, true, true},
		{"bad continuation", []string{"caf\xc3", "("}, false, false},
		{"lone continuation byte", []string{"\x80"}, false, false},
		{"overlong", []string{"\xc0\xaf"}, false, false},
		{"surrogate", []string{"\xed\xa0\x80"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &socket{}
			ok := true
			for _, r := range tt.reads {
				if !s.validUTF8([]byte(r)) {
					ok = false
					break
				}
			}
			if ok != tt.ok || (ok && (s.npart > 0) != tt.open) {
				t.Fatalf("valid %v, pending %d bytes; want valid %v, pending %v", ok, s.npart, tt.ok, tt.open)
			}
		})
	}
}
