package policy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
)

func TestIsRequest(t *testing.T) {
	tests := []struct {
		frame string
		want  bool
	}{
		{"<policy-file-request/>\x00", true},
		{"<policy-file-request/>", true},
		{"<policy-file-request/>\x00\x00", false},
		{"<policy-file-request />\x00", false},
		{"hello\x00", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsRequest([]byte(tt.frame)); got != tt.want {
			t.Errorf("IsRequest(%q) = %v, want %v", tt.frame, got, tt.want)
		}
	}
}

func TestDefault(t *testing.T) {
	tests := []struct {
		ports []int
		want  string
	}{
		{nil, `<allow-access-from domain="*" to-ports="*"/>`},
		{[]int{10000}, `<allow-access-from domain="*" to-ports="10000"/>`},
		{[]int{10000, 10001}, `<allow-access-from domain="*" to-ports="10000,10001"/>`},
	}
	for _, tt := range tests {
		doc := Default(tt.ports...)
		if !bytes.Contains(doc, []byte(tt.want)) {
			t.Errorf("Default(%v) = %s, want it to contain %s", tt.ports, doc, tt.want)
		}
		if err := Validate(doc); err != nil {
			t.Errorf("Validate(Default(%v)) = %v", tt.ports, err)
		}
		if bytes.IndexByte(doc, 0) >= 0 {
			t.Errorf("Default(%v) contains a NUL", tt.ports)
		}
	}
}

func TestResponse(t *testing.T) {
	for _, doc := range []string{"<cross-domain-policy/>", "<cross-domain-policy/>\x00"} {
		if got := string(Response([]byte(doc))); got != "<cross-domain-policy/>\x00" {
			t.Errorf("Response(%q) = %q", doc, got)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		doc  string
		want string
	}{
		{"<cross-domain-policy><allow-access-from domain=\"*\" to-ports=\"*\"/></cross-domain-policy>", ""},
		{"  \n", "policy: the policy document is empty"},
		{"<cross-domain-policy>\x00</cross-domain-policy>", "policy: NUL byte at offset 21 (a Flash client stops reading there)"},
		{"<policy/>", "policy: root element is <policy>, want <cross-domain-policy>"},
		{"<cross-domain-policy>", "policy: not well-formed XML: XML syntax error on line 1: unexpected EOF"},
		{"<?xml version=\"1.0\"?>", "policy: no <cross-domain-policy> element"},
	}
	for _, tt := range tests {
		err := Validate([]byte(tt.doc))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("Validate(%q) = %q, want %q", tt.doc, got, tt.want)
		}
	}
}

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln := testutil.Listen(t)
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestSniff(t *testing.T) {
	tests := []struct {
		name       string
		writes     []string
		wantPrefix string
		wantReq    bool
	}{
		{"request", []string{Request}, Request, true},
		{"request byte by byte", strings.Split(Request, ""), Request, true},
		{"ordinary message", []string{"hello\x00world\x00"}, "hello\x00world\x00", false},
		{"diverges late", []string{"<policy-file-reques", "X/>\x00"}, "<policy-file-requesX/>\x00", false},
		{"silence", nil, "", false},
		{"prefix then silence", []string{"<pol"}, "<pol", false},
		{"request then more", []string{Request + "extra"}, Request, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := pair(t)
			go func() {
				for _, w := range tt.writes {
					c.Write([]byte(w))
				}
			}()
			// With a script of one-byte writes the sniff may see any split;
			// it must read them all before the deadline.
			prefix, isReq, err := Sniff(s, 300*time.Millisecond)
			if err != nil {
				t.Fatalf("Sniff error: %v", err)
			}
			if isReq != tt.wantReq {
				t.Fatalf("isRequest = %v, want %v", isReq, tt.wantReq)
			}
			// A diverging prefix may stop early on a split read; what was read
			// must be a prefix of what was sent, and at most len(Request).
			sent := strings.Join(tt.writes, "")
			if tt.wantReq || tt.name == "silence" || tt.name == "prefix then silence" {
				if string(prefix) != tt.wantPrefix {
					t.Fatalf("prefix = %q, want %q", prefix, tt.wantPrefix)
				}
			} else if !strings.HasPrefix(sent, string(prefix)) || len(prefix) == 0 || len(prefix) > len(Request) {
				t.Fatalf("prefix = %q, want a non-empty prefix of %q", prefix, sent)
			}
			// The deadline is cleared: a later read waits for data.
			go c.Write([]byte("z"))
			b := make([]byte, 64)
			if n, err := s.Read(b); err != nil || n == 0 {
				t.Fatalf("read after Sniff: %d, %v", n, err)
			}
		})
	}
}

func TestSniffClosed(t *testing.T) {
	c, s := pair(t)
	c.Write([]byte("<pol"))
	c.Close()
	prefix, isReq, err := Sniff(s, time.Second)
	if string(prefix) != "<pol" || isReq || err != io.EOF {
		t.Fatalf("Sniff = %q, %v, %v; want \"<pol\", false, EOF", prefix, isReq, err)
	}
}

func TestServer(t *testing.T) {
	log, logs := testutil.Logger(t, slog.LevelDebug)
	srv := &Server{
		Policy:      Default(10000),
		ReadTimeout: 200 * time.Millisecond,
		Logger:      log,
	}
	ln := testutil.Listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	tests := []struct {
		name    string
		send    string
		reply   string
		wantLog string
	}{
		{"request", Request, string(Response(Default(10000))), "reason=policy"},
		{"garbage", "GET / HTTP/1.0\r\n\r\n", "", `reason=not_a_policy_request first_bytes="GET / HTTP/1.0\r\n\r\n"`},
		{"silence", "", "", "reason=no_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tt.send != "" {
				c.Write([]byte(tt.send))
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(c) // the server closes after answering
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if string(got) != tt.reply {
				t.Fatalf("reply = %q, want %q", got, tt.reply)
			}
			testutil.EventuallyContains(t, logs, tt.wantLog, 5*time.Second)
		})
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve after cancel = %v, want nil", err)
	}
}
