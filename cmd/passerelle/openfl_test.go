package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/passerelle/passerelle/internal/testbrowser"
	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
	"github.com/passerelle/passerelle/protocol/envoie"
)

// openflEnv names OpenFL's HTML5 build (openfl.min.js of the npm package
// openfl 8.9.6), which .ci/run fetches from the npm registry.
const openflEnv = "OPENFL_JS"

// openflPage runs OpenFL's own XMLSocket and Socket in the page, as an
// OpenFL HTML5 app does (on a stage, whose frames drive the sockets):
// XMLSocket.connect(host, port) opens wss://host:port/ from an https page,
// and each message is a DataEvent.
const openflPage = `<!doctype html>
<meta charset="utf-8">
<script src="/openfl.min.js"></script>
<body>
<script>
// Socket.connect opens the WebSocket, then registers a frame listener on
// the app's stage (which only calls flush); this page has no stage, so that
// last step throws, after the socket is set up. The page flushes itself.
function connect(sock, port) {
  try { sock.connect("localhost", port); } catch (e) {}
}
window.chat = [];
window.asset = null;
var xs = new openfl.net.XMLSocket();
xs.addEventListener("connect", function () { window.chatConnected = true; xs.send("hello from openfl"); });
xs.addEventListener("data", function (e) { window.chat.push(e.data); });
connect(xs, CHAT_PORT);

window.fetchAsset = function () {
  try {
    var so = new openfl.net.Socket();
    var got = new openfl.utils.ByteArray();
    got.endian = "bigEndian"; // ENVOIE's length is big-endian, as Flash's default
    so.addEventListener("connect", function () { so.writeUTFBytes("ENVOIE bienvenue.txt\n"); so.flush(); });
    so.addEventListener("socketData", function () {
      so.readBytes(got, got.length, so.bytesAvailable);
      if (got.length >= 4) {
        got.position = 0;
        var n = got.readUnsignedInt();
        if (got.length >= 4 + n) { window.asset = got.readUTFBytes(n); }
      }
    });
    connect(so, ASSET_PORT);
    return "started";
  } catch (e) { return "threw " + e.stack; }
};
</script>`

// TestServeOpenFLClients runs OpenFL's HTML5 XMLSocket and Socket in
// headless chromium against a real serve: the XMLSocket talks with a raw
// TLS client in the default room, both ways, and the Socket fetches an
// asset with ENVOIE over the same WebSocket path.
func TestServeOpenFLClients(t *testing.T) {
	js := os.Getenv(openflEnv)
	if js == "" {
		t.Fatalf("%s is not set: it names OpenFL's HTML5 build (openfl.min.js of npm's openfl 8.9.6), which .ci/run fetches", openflEnv)
	}
	lib, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	s := startServe(t, dataDir)
	pool, caFile := caPool(t, dataDir)
	chat, assets := s.addrs["chat"][0], s.addrs["envoie"][0]

	raw := dialTLS(t, chat, "localhost", pool)
	ping(t, raw)

	page := strings.NewReplacer("CHAT_PORT", portOf(chat), "ASSET_PORT", portOf(assets)).Replace(openflPage)
	b := openApp(t, caFile, page, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/openfl.min.js" {
			return false
		}
		w.Header().Set("Content-Type", "text/javascript")
		w.Write(lib)
		return true
	})

	if got := readFrames(t, raw, 1); got[0] != "hello from openfl\x00" {
		t.Fatalf("raw client got %q from OpenFL's XMLSocket", got)
	}
	io.WriteString(raw, "<msg>to openfl</msg>\x00")
	testutil.Eventually(t, "OpenFL's DataEvent", waitTimeout, func() bool {
		return strings.Contains(strings.Join(testbrowser.Eval[[]string](b, `window.chat`), "|"), "<msg>to openfl</msg>")
	})
	if got := testbrowser.Eval[string](b, `fetchAsset()`); got != "started" {
		t.Fatalf("OpenFL's Socket: %s", got)
	}
	testutil.EventuallyReport(t, waitTimeout, func() bool {
		return testbrowser.Eval[string](b, `window.asset || ""`) != ""
	}, func() string {
		return "no asset through OpenFL's Socket; console: " + strings.Join(b.Console(), " | ")
	})
	want := mustReadSample(t, "bienvenue.txt")
	if got := testbrowser.Eval[string](b, `window.asset`); got != want {
		t.Fatalf("OpenFL's Socket read %q (%s bytes), want the sample", got, strconv.Itoa(len(got)))
	}
}

// openApp serves an app's page over HTTPS from another origin than serve's
// (its own port and CA), as a game's page is, and opens it in a browser
// that trusts both CAs. files answers the page's other requests (its
// scripts), returning false for the page itself.
func openApp(t *testing.T, serveCA, page string, files func(http.ResponseWriter, *http.Request) bool) *testbrowser.Browser {
	t.Helper()
	root := testpki.NewRoot(t, testpki.CAOptions{CommonName: "app page root"})
	leaf := root.Leaf(t, testpki.LeafOptions{})
	app := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if files(w, r) {
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	}))
	app.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}}
	app.StartTLS()
	t.Cleanup(app.Close)
	b := testbrowser.Start(t, testbrowser.Options{TrustCAs: []*x509.Certificate{readCert(t, serveCA), root.Cert}})
	b.Navigate("https://localhost:" + portOf(app.Listener.Addr().String()) + "/")
	return b
}

func mustReadSample(t *testing.T, name string) string {
	t.Helper()
	f, err := envoie.Samples().Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
