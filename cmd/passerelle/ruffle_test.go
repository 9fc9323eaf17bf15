package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/protocol/xmlsocket"
)

// ruffleEnv names the folder of Ruffle's self-hosted build (the npm package
// @ruffle-rs/ruffle 0.6.0: ruffle.js and its wasm files), which .ci/run
// fetches.
const ruffleEnv = "RUFFLE_DIR"

// TestServeRuffleSocketProxy runs a Flash movie in Ruffle, in headless
// chromium, whose XMLSocket Ruffle sends through its socketProxy setting to
// serve's chat port: the movie's message reaches a raw TLS client in the
// default room, and its answer to the raw client's message comes back.
func TestServeRuffleSocketProxy(t *testing.T) {
	dir := os.Getenv(ruffleEnv)
	if dir == "" {
		t.Fatalf("%s is not set: it names the folder of Ruffle's self-hosted build (npm's @ruffle-rs/ruffle 0.6.0), which .ci/run fetches", ruffleEnv)
	}
	if _, err := os.Stat(filepath.Join(dir, "ruffle.js")); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	s := startServe(t, dataDir)
	pool, caFile := caPool(t, dataDir)
	chat := s.addrs["chat"][0]
	raw := dialTLS(t, chat, "localhost", pool)
	ping(t, raw)

	// The movie connects to flash.example:1234; Ruffle maps that host and
	// port to the chat port's WebSocket.
	swf := xmlSocketMovie("flash.example", 1234)
	page := strings.NewReplacer("PROXY_URL", "wss://localhost:"+portOf(chat)+"/").Replace(`<!doctype html>
<meta charset="utf-8">
<body>
<div id="stage"></div>
<script src="/ruffle/ruffle.js"></script>
<script>
window.RufflePlayer = window.RufflePlayer || {};
var player = window.RufflePlayer.newest().createPlayer();
document.getElementById("stage").appendChild(player);
player.load({
  url: "/movie.swf",
  autoplay: "on",
  unmuteOverlay: "hidden",
  preferredRenderer: "canvas",
  socketProxy: [{ host: "flash.example", port: 1234, proxyUrl: "PROXY_URL" }],
});
</script>`)
	files := http.StripPrefix("/ruffle/", http.FileServer(http.Dir(dir)))
	b := openApp(t, caFile, page, func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case strings.HasPrefix(r.URL.Path, "/ruffle/"):
			files.ServeHTTP(w, r)
		case r.URL.Path == "/movie.swf":
			w.Header().Set("Content-Type", "application/x-shockwave-flash")
			w.Write(swf)
		default:
			return false
		}
		return true
	})

	raw.SetReadDeadline(time.Now().Add(waitTimeout))
	first, err := xmlsocket.NewReader(raw, 1<<16).ReadFrame()
	raw.SetReadDeadline(time.Time{})
	if err != nil || string(first) != "hello from ruffle\x00" {
		t.Fatalf("raw client got %q, %v from the movie; console: %s", first, err, strings.Join(b.Console(), " | "))
	}
	io.WriteString(raw, "<msg>to ruffle</msg>\x00")
	if got := readFrames(t, raw, 1); got[0] != "got: <msg>to ruffle</msg>\x00" {
		t.Fatalf("the movie answered %q", got)
	}
}

// xmlSocketMovie is a Flash movie (SWF 8, ActionScript 2 bytecode) that
// does, on its first frame:
//
//	var s = new XMLSocket();
//	s.onConnect = function (ok) { s.send("hello from ruffle"); };
//	s.onData = function (d) { s.send("got: " + d); };
//	s.connect(host, port);
func xmlSocketMovie(host string, port int) []byte {
	var a avm1
	// var s = new XMLSocket();
	a.push(str("s"), i32(0), str("XMLSocket"))
	a.op(0x40) // NewObject
	a.op(0x1D) // SetVariable
	// s.onConnect = function (ok) { s.send("hello from ruffle"); };
	var onConnect avm1
	onConnect.push(str("hello from ruffle"), i32(1), str("s"))
	onConnect.op(0x1C) // GetVariable
	onConnect.push(str("send"))
	onConnect.op(0x52) // CallMethod
	onConnect.op(0x17) // Pop
	a.push(str("s"))
	a.op(0x1C)
	a.push(str("onConnect"))
	a.function([]string{"ok"}, onConnect.code)
	a.op(0x4F) // SetMember
	// s.onData = function (d) { s.send("got: " + d); };
	var onData avm1
	onData.push(str("got: "), str("d"))
	onData.op(0x1C)
	onData.op(0x47) // Add2
	onData.push(i32(1), str("s"))
	onData.op(0x1C)
	onData.push(str("send"))
	onData.op(0x52)
	onData.op(0x17)
	a.push(str("s"))
	a.op(0x1C)
	a.push(str("onData"))
	a.function([]string{"d"}, onData.code)
	a.op(0x4F)
	// s.connect(host, port): arguments are pushed last first.
	a.push(i32(int32(port)), str(host), i32(2), str("s"))
	a.op(0x1C)
	a.push(str("connect"))
	a.op(0x52)
	a.op(0x17)
	a.op(0x00) // end of actions

	var body bytes.Buffer
	// Frame size: a RECT of 5-bit nbits = 15, then 0, 2000, 0, 2000 twips.
	body.Write(rect(15, 0, 2000, 0, 2000))
	body.Write([]byte{0x00, 0x0C})             // 12 frames per second (8.8 fixed point)
	body.Write([]byte{0x01, 0x00})             // one frame
	body.Write(tag(69, []byte{0x01, 0, 0, 0})) // FileAttributes: UseNetwork
	body.Write(tag(12, a.code))                // DoAction
	body.Write(tag(1, nil))                    // ShowFrame
	body.Write(tag(0, nil))                    // End
	out := []byte("FWS")
	out = append(out, 8)
	out = binary.LittleEndian.AppendUint32(out, uint32(8+body.Len()))
	return append(out, body.Bytes()...)
}

// avm1 assembles ActionScript 2 bytecode.
type avm1 struct{ code []byte }

type pushValue []byte

func str(s string) pushValue { return append(append([]byte{0}, s...), 0) }
func i32(n int32) pushValue  { return binary.LittleEndian.AppendUint32([]byte{7}, uint32(n)) }

func (a *avm1) op(code byte) { a.code = append(a.code, code) }

// push is ActionPush (0x96) of the values, in order.
func (a *avm1) push(vs ...pushValue) {
	var payload []byte
	for _, v := range vs {
		payload = append(payload, v...)
	}
	a.code = append(a.code, 0x96)
	a.code = binary.LittleEndian.AppendUint16(a.code, uint16(len(payload)))
	a.code = append(a.code, payload...)
}

// function is ActionDefineFunction (0x9B) of an anonymous function, which
// leaves the function on the stack, followed by its body.
func (a *avm1) function(params []string, body []byte) {
	var rec []byte
	rec = append(rec, 0) // no name
	rec = binary.LittleEndian.AppendUint16(rec, uint16(len(params)))
	for _, p := range params {
		rec = append(append(rec, p...), 0)
	}
	rec = binary.LittleEndian.AppendUint16(rec, uint16(len(body)))
	a.code = append(a.code, 0x9B)
	a.code = binary.LittleEndian.AppendUint16(a.code, uint16(len(rec)))
	a.code = append(a.code, rec...)
	a.code = append(a.code, body...)
}

// tag is one SWF tag with its record header (long form when needed).
func tag(code int, data []byte) []byte {
	var out []byte
	if len(data) < 0x3f {
		out = binary.LittleEndian.AppendUint16(out, uint16(code<<6|len(data)))
	} else {
		out = binary.LittleEndian.AppendUint16(out, uint16(code<<6|0x3f))
		out = binary.LittleEndian.AppendUint32(out, uint32(len(data)))
	}
	return append(out, data...)
}

// rect is a SWF RECT: nbits, then four signed values of nbits bits each,
// most significant bit first, padded to a byte.
func rect(nbits uint, vals ...int) []byte {
	var out []byte
	var acc uint64
	var n uint
	put := func(v uint64, bits uint) {
		for i := int(bits) - 1; i >= 0; i-- {
			acc = acc<<1 | (v>>uint(i))&1
			n++
			if n == 8 {
				out = append(out, byte(acc))
				acc, n = 0, 0
			}
		}
	}
	put(uint64(nbits), 5)
	for _, v := range vals {
		put(uint64(v)&(1<<nbits-1), nbits)
	}
	if n > 0 {
		out = append(out, byte(acc<<(8-n)))
	}
	return out
}
