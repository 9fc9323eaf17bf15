package web

import (
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/protocol/envoie"
)

// assetTree makes root/ with a few files, a folder, a FIFO and a symbolic
// link leading out of root to a file beside it, and returns root.
func assetTree(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	files := map[string]string{
		"outside.txt":         "secret outside the root\n",
		"root/hello.txt":      "hello, world\n",
		"root/pic.png":        "\x89PNG\r\n\x1a\nnot really a picture",
		"root/blob.xyzzy":     "<html><script>alert(1)</script></html>",
		"root/sub/inner.txt":  "inner\n",
		"root/with space.txt": "spaced\n",
		"root/.env":           "SECRET=1\n",
		"root/.git/config":    "[core]\n",
		"root/sub/.hidden":    "hidden\n",
	}
	for name, content := range files {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../outside.txt", filepath.Join(root, "escape.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("hello.txt", filepath.Join(root, "alias.txt")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// etagOf is the ETag Assets gives a file with a modification time.
func etagOf(t *testing.T, path string) string {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`"%x-%x"`, st.ModTime().UnixNano(), st.Size())
}

func TestAssets(t *testing.T) {
	root := assetTree(t)
	dir, err := envoie.OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	logger, _ := testutil.Logger(t, slog.LevelDebug)
	srv := serve(t, &Assets{Files: dir, Logger: logger})
	helloTag := etagOf(t, filepath.Join(root, "hello.txt"))

	req := func(method, target string, headers ...string) string {
		s := method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
		for _, h := range headers {
			s += h + "\r\n"
		}
		return s + "\r\n"
	}
	type want struct {
		status  int
		body    string
		headers map[string]string
	}
	notFound := want{status: 404, body: notFoundBody,
		headers: map[string]string{"Content-Type": "text/plain; charset=utf-8", "ETag": "", "Accept-Ranges": ""}}
	tests := []struct {
		name    string
		request string
		want    want
	}{
		{"whole file", req("GET", "/hello.txt"), want{200, "hello, world\n", map[string]string{
			"Content-Type": "text/plain; charset=utf-8", "Content-Length": "13", "Accept-Ranges": "bytes",
			"ETag": helloTag, "X-Content-Type-Options": "nosniff",
			"Content-Security-Policy": "default-src 'none'; sandbox"}}},
		{"HEAD", req("HEAD", "/hello.txt"), want{200, "", map[string]string{
			"Content-Length": "13", "ETag": helloTag}}},
		{"range", req("GET", "/hello.txt", "Range: bytes=0-4"), want{206, "hello", map[string]string{
			"Content-Range": "bytes 0-4/13", "Content-Length": "5"}}},
		{"open range", req("GET", "/hello.txt", "Range: bytes=7-"), want{206, "world\n", map[string]string{
			"Content-Range": "bytes 7-12/13"}}},
		{"suffix range", req("GET", "/hello.txt", "Range: bytes=-3"), want{206, "ld\n", nil}},
		{"range past the end", req("GET", "/hello.txt", "Range: bytes=100-200"), want{416, "", map[string]string{
			"Content-Range": "bytes */13"}}},
		{"If-None-Match hit", req("GET", "/hello.txt", "If-None-Match: "+helloTag), want{304, "", map[string]string{
			"ETag": helloTag}}},
		{"If-None-Match miss", req("GET", "/hello.txt", `If-None-Match: "other"`), want{200, "hello, world\n", nil}},
		{"If-Range with an old tag", req("GET", "/hello.txt", "Range: bytes=0-4", `If-Range: "old"`), want{200, "hello, world\n", nil}},
		{"png", req("GET", "/pic.png"), want{200, "\x89PNG\r\n\x1a\nnot really a picture", map[string]string{"Content-Type": "image/png"}}},
		{"unknown extension is not sniffed", req("GET", "/blob.xyzzy"), want{200, "<html><script>alert(1)</script></html>",
			map[string]string{"Content-Type": "application/octet-stream"}}},
		{"folder path", req("GET", "/sub/inner.txt"), want{200, "inner\n", nil}},
		{"escaped space", req("GET", "/with%20space.txt"), want{200, "spaced\n", nil}},
		{"link inside the root", req("GET", "/alias.txt"), want{200, "hello, world\n", nil}},

		{"missing", req("GET", "/missing.txt"), notFound},
		{"HEAD missing", req("HEAD", "/missing.txt"), want{404, "", nil}},
		{"root", req("GET", "/"), notFound},
		{"folder", req("GET", "/sub"), notFound},
		{"folder slash", req("GET", "/sub/"), notFound},
		{"FIFO", req("GET", "/fifo"), notFound},
		{"dot dot", req("GET", "/../outside.txt"), notFound},
		{"escaped dot dot", req("GET", "/%2e%2e/outside.txt"), notFound},
		{"escaped slash dot dot", req("GET", "/..%2Foutside.txt"), notFound},
		{"dot dot inside", req("GET", "/sub/../hello.txt"), notFound},
		{"dot", req("GET", "/./hello.txt"), notFound},
		{"absolute", req("GET", "//hello.txt"), notFound},
		{"backslash", req("GET", "/sub%5Cinner.txt"), notFound},
		{"NUL", req("GET", "/hello.txt%00"), notFound},
		{"control byte", req("GET", "/hello%0A.txt"), notFound},
		{"bad UTF-8", req("GET", "/%FF.txt"), notFound},
		{"link out of the root", req("GET", "/escape.txt"), notFound},
		{"dotfile", req("GET", "/.env"), notFound},
		{"in a dot folder", req("GET", "/.git/config"), notFound},
		{"dotfile in a folder", req("GET", "/sub/.hidden"), notFound},
		{"too long", req("GET", "/"+strings.Repeat("a", envoie.MaxName+1)), notFound},

		{"POST", req("POST", "/hello.txt", "Content-Length: 0"), want{405, "405 method not allowed: use GET or HEAD\n",
			map[string]string{"Allow": "GET, HEAD"}}},
		{"OPTIONS", req("OPTIONS", "/hello.txt"), want{405, "405 method not allowed: use GET or HEAD\n",
			map[string]string{"Allow": "GET, HEAD"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := srv.raw(t, tc.request)
			if resp.StatusCode != tc.want.status {
				t.Fatalf("status = %d, want %d (body %q)", resp.StatusCode, tc.want.status, body)
			}
			if tc.want.status != 416 && body != tc.want.body {
				t.Errorf("body = %q, want %q", body, tc.want.body)
			}
			for k, v := range tc.want.headers {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestAssetsSamples serves the embedded samples, whose files have no
// modification time: the ETag is a digest of the content.
func TestAssetsSamples(t *testing.T) {
	srv := serve(t, &Assets{Files: envoie.Samples()})
	c := srv.client()
	resp, err := c.Get(srv.url("/bienvenue.txt"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || len(tag) != 34 || resp.Header.Get("Last-Modified") != "" {
		t.Fatalf("status %d, ETag %q, Last-Modified %q; want 200, a quoted 32-digit digest, none",
			resp.StatusCode, tag, resp.Header.Get("Last-Modified"))
	}
	r, _ := http.NewRequest("GET", srv.url("/bienvenue.txt"), nil)
	r.Header.Set("If-None-Match", tag)
	resp, err = c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the sample's ETag: status %d, want 304", resp.StatusCode)
	}
}

// TestAssetsNoFiles: an Assets without files answers 404 to everything.
func TestAssetsNoFiles(t *testing.T) {
	srv := serve(t, &Assets{})
	resp, body := srv.raw(t, "GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 404 || body != notFoundBody {
		t.Errorf("got %d %q, want 404 %q", resp.StatusCode, body, notFoundBody)
	}
}

// TestAssetsOrigins: a page of an allowed origin may read an asset with
// fetch (CORS); another gets 403 and a log line.
func TestAssetsOrigins(t *testing.T) {
	logger, logs := testutil.Logger(t, slog.LevelInfo)
	origins, err := NewOrigins([]string{"https://game.example"}, logger)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, &Assets{Files: envoie.Samples(), Origins: origins, Logger: logger})
	get := func(origin string) (*http.Response, string) {
		h := ""
		if origin != "" {
			h = "Origin: " + origin + "\r\n"
		}
		return srv.raw(t, "GET /bienvenue.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"+h+"\r\n")
	}
	resp, _ := get("https://game.example")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("allowed origin: status %d, Access-Control-Allow-Origin %q; want 200, *",
			resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	resp, _ = get("")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("no origin: status %d, Access-Control-Allow-Origin %q; want 200 and none",
			resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	resp, body := get("https://evil.example")
	if resp.StatusCode != 403 || body != forbiddenBody {
		t.Errorf("refused origin: %d %q, want 403 %q", resp.StatusCode, body, forbiddenBody)
	}
	testutil.EventuallyContains(t, logs, `msg="origin refused"`, 2*time.Second)
	if !strings.Contains(logs.String(), `origin=https://evil.example path=/bienvenue.txt reason=origin_not_allowed`) {
		t.Errorf("log = %q", logs.String())
	}
}

// noSeekFS hides Seek from the files of an fs.FS, as a stream-backed file
// system would.
type noSeekFS struct{ fs.FS }

type noSeekFile struct{ f fs.File }

func (n noSeekFS) Open(name string) (fs.File, error) {
	f, err := n.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return noSeekFile{f}, nil
}

func (n noSeekFile) Stat() (fs.FileInfo, error) { return n.f.Stat() }
func (n noSeekFile) Read(p []byte) (int, error) { return n.f.Read(p) }
func (n noSeekFile) Close() error               { return n.f.Close() }

// TestAssetsNoSeek: a file that cannot seek is sent whole, ranges ignored.
func TestAssetsNoSeek(t *testing.T) {
	files := envoie.FromFS(noSeekFS{fstest.MapFS{"a.txt": {Data: []byte("abcdef")}}})
	srv := serve(t, &Assets{Files: files})
	resp, body := srv.raw(t, "GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\nRange: bytes=0-1\r\n\r\n")
	if resp.StatusCode != 200 || body != "abcdef" || resp.Header.Get("Content-Length") != "6" || resp.Header.Get("ETag") != "" {
		t.Errorf("got %d %q, Content-Length %q, ETag %q; want 200 \"abcdef\", 6, none",
			resp.StatusCode, body, resp.Header.Get("Content-Length"), resp.Header.Get("ETag"))
	}
	resp, body = srv.raw(t, "HEAD /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != 200 || body != "" || resp.Header.Get("Content-Length") != "6" {
		t.Errorf("HEAD: got %d %q, Content-Length %q", resp.StatusCode, body, resp.Header.Get("Content-Length"))
	}
}
