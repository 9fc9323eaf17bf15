package web

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/passerelle/passerelle/internal/peekconn"
	"github.com/passerelle/passerelle/protocol/policy"
)

// TestClassify tells each kind of client by its first bytes, however they
// are cut, answers the policy request and refuses HTTP/2 itself, and hands
// every byte read on to the service.
func TestClassify(t *testing.T) {
	const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	longLine := "GET /" + strings.Repeat("a", maxRequestLine-len("GET / HTTP/1.1\r\n")) + " HTTP/1.1\r\n"
	tooLong := "GET /" + strings.Repeat("a", maxRequestLine) + " HTTP/1.1\r\n"
	tests := []struct {
		name   string
		writes []string
		close  bool // the client closes after its writes
		want   connKind
		first  string // what the service then reads
	}{
		{"websocket upgrade", []string{"GET / HTTP/1.1\r\n"}, false, kindHTTP, "GET / HTTP/1.1\r\n"},
		{"request line cut", []string{"GE", "T /x HT", "TP/1.1\r", "\n"}, false, kindHTTP, "GET /x HTTP/1.1\r\n"},
		{"HTTP/1.0", []string{"HEAD /a HTTP/1.0\r\nHost: x\r\n\r\n"}, false, kindHTTP, "HEAD /a HTTP/1.0\r\n"},
		{"OPTIONS *", []string{"OPTIONS * HTTP/1.1\r\n"}, false, kindHTTP, "OPTIONS * HTTP/1.1\r\n"},
		{"chat message GET ready", []string{"GET ready\x00"}, false, kindRaw, "GET ready\x00"},
		{"chat message GET ready, cut", []string{"GET re", "ady\x00"}, false, kindRaw, "GET ready\x00"},
		{"chat message starting like a method", []string{"GETTING there\x00"}, false, kindRaw, "GETTING there\x00"},
		{"request line without its CRLF in time", []string{"GET / HTTP/1.1"}, false, kindRaw, "GET / HTTP/1.1"},
		{"request line of another version", []string{"GET / HTTP/3.0\r\n"}, false, kindRaw, "GET / HTTP/3.0\r\n"},
		{"bare LF", []string{"GET / HTTP/1.1\n"}, false, kindRaw, "GET / HTTP/1.1\n"},
		{"long request line", []string{longLine}, false, kindHTTP, longLine},
		{"first line over the bound", []string{tooLong}, false, kindRaw, tooLong},
		{"ENVOIE request", []string{"ENVOIE a.txt\n"}, false, kindRaw, "ENVOIE a.txt\n"},
		{"silent client", nil, false, kindRaw, ""},
		{"message, then gone", []string{"hello\x00"}, true, kindRaw, "hello\x00"},
		{"gone before a byte", nil, true, kindGone, ""},
		{"policy request", []string{policy.Request}, false, kindPolicy, ""},
		{"policy request cut", []string{"<policy-file-", "request/>\x00"}, false, kindPolicy, ""},
		{"policy request, then gone", []string{policy.Request}, true, kindPolicy, ""},
		{"almost the policy request", []string{"<policy-file-requestX\x00"}, false, kindRaw, "<policy-file-requestX\x00"},
		{"HTTP/2 preface", []string{h2Preface}, false, kindHTTP2, ""},
		{"HTTP/2 preface line cut", []string{"PRI * HT", "TP/2.0\r\n"}, false, kindHTTP2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			defer server.Close()
			answer := make(chan []byte, 1)
			go func() {
				for _, w := range tt.writes {
					client.Write([]byte(w))
				}
				if tt.close {
					client.Close()
					answer <- nil
					return
				}
				client.SetReadDeadline(time.Now().Add(5 * time.Second))
				b, _ := io.ReadAll(client)
				answer <- b
			}()
			door := &Door{Gate: &policy.Gate{}, Wait: 100 * time.Millisecond, LineTimeout: 200 * time.Millisecond}
			pc := peekconn.New(server)
			if got := door.classify(context.Background(), pc); got != tt.want {
				t.Fatalf("kind %s, want %s", kindNames[got], kindNames[tt.want])
			}
			switch {
			case tt.want == kindPolicy && !tt.close:
				server.Close()
				if got := <-answer; string(got) != string(policy.Response(policy.Default())) {
					t.Fatalf("policy requester got %q", got)
				}
			case tt.want == kindHTTP2:
				server.Close()
				checkHTTP2Refusal(t, <-answer)
			case tt.first != "":
				got := make([]byte, len(tt.first))
				pc.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadFull(pc, got); err != nil || string(got) != tt.first {
					t.Fatalf("service read %q, %v; want %q", got, err, tt.first)
				}
				if tt.close {
					if n, err := pc.Read(got); n != 0 || err != io.EOF {
						t.Fatalf("after the message the service read %d bytes, %v; want EOF", n, err)
					}
				}
			}
		})
	}
}

var kindNames = map[connKind]string{kindRaw: "raw", kindHTTP: "http", kindPolicy: "policy", kindHTTP2: "http2", kindGone: "gone"}

// checkHTTP2Refusal checks that b is the server's HTTP/2 preface (an empty
// SETTINGS frame) and a GOAWAY saying HTTP_1_1_REQUIRED with HTTP2Refusal.
func checkHTTP2Refusal(t *testing.T, b []byte) {
	t.Helper()
	fr := http2.NewFramer(nil, bytes.NewReader(b))
	f, err := fr.ReadFrame()
	if sf, ok := f.(*http2.SettingsFrame); err != nil || !ok || sf.IsAck() || sf.NumSettings() != 0 {
		t.Fatalf("first frame %v, %v; want an empty SETTINGS", f, err)
	}
	f, err = fr.ReadFrame()
	ga, ok := f.(*http2.GoAwayFrame)
	if err != nil || !ok {
		t.Fatalf("second frame %v, %v; want GOAWAY", f, err)
	}
	if ga.ErrCode != http2.ErrCodeHTTP11Required || string(ga.DebugData()) != HTTP2Refusal {
		t.Fatalf("GOAWAY %v %q; want HTTP_1_1_REQUIRED %q", ga.ErrCode, ga.DebugData(), HTTP2Refusal)
	}
	if _, err := fr.ReadFrame(); err != io.EOF {
		t.Fatalf("after GOAWAY: %v, want the end", err)
	}
}

// TestRequestLine: the judgement of a first line, byte by byte.
func TestRequestLine(t *testing.T) {
	tests := []struct {
		in      string
		want    connKind
		decided bool
	}{
		{"G", 0, false},
		{"GET", 0, false},
		{"GET ", 0, false},
		{"GET /", 0, false},
		{"GET / HTTP/1.", 0, false},
		{"GET / HTTP/1.1\r", 0, false},
		{"GET / HTTP/1.1\r\n", kindHTTP, true},
		{"M-SEARCH * HTTP/1.1\r\n", kindHTTP, true},
		{" GET / HTTP/1.1\r\n", kindRaw, true},
		{"GET  / HTTP/1.1\r\n", kindRaw, true},
		{"GET /\x00", kindRaw, true},
		{"GET / HTTP/x", kindRaw, true},
		{"GET / HTTP/1.1\rx", kindRaw, true},
		{"G\xc3\xa9T / HTTP/1.1\r\n", kindRaw, true},
		{"PRI * HTTP/2.0\r\n", kindHTTP2, true},
		{"PRI / HTTP/2.0\r\n", kindRaw, true},
		{"\xef\xbb\xbfGET / HTTP/1.1\r\n", kindRaw, true},
	}
	for _, tt := range tests {
		got, decided := requestLine([]byte(tt.in))
		if got != tt.want || decided != tt.decided {
			t.Errorf("requestLine(%q) = %s, %v; want %s, %v", tt.in, kindNames[got], decided, kindNames[tt.want], tt.decided)
		}
	}
}

// FuzzJudge: a kind, once decided on the first bytes, is the kind of every
// longer start of the same stream, so however the client's bytes are cut,
// the door decides the same; and judge never reads past what it is given.
func FuzzJudge(f *testing.F) {
	for _, s := range []string{"GET / HTTP/1.1\r\n", "GET ready\x00", policy.Request, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "\xef\xbb\xbf<x/>\x00", "ENVOIE a\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		var first connKind
		decidedAt := -1
		for n := 1; n <= len(p); n++ {
			k, decided := judge(p[:n:n])
			switch {
			case decided && decidedAt < 0:
				first, decidedAt = k, n
			case decidedAt >= 0 && (!decided || k != first):
				t.Fatalf("judge(%q) = %s, %v after %s at %d bytes", p[:n], kindNames[k], decided, kindNames[first], decidedAt)
			}
		}
	})
}
