package web

import (
	"crypto/tls"
	"log/slog"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/passerelle/passerelle/hub"
	"github.com/passerelle/passerelle/internal/testutil"
)

// TestIdleClientsPinged: a WebSocket client that answers the server's pings
// stays, however long it says nothing; one that answers nothing is closed
// after two intervals, with a log line saying why.
func TestIdleClientsPinged(t *testing.T) {
	log, logs := testutil.Logger(t, slog.LevelInfo)
	h := hub.New(hub.Config{})
	t.Cleanup(func() { h.Close() })
	origins, err := NewOrigins(nil, log)
	if err != nil {
		t.Fatal(err)
	}
	// Long enough for a pong to come back under the race detector on a
	// loaded machine: a client has one interval to answer a ping.
	const interval = 300 * time.Millisecond
	srv := serve(t, &Chat{Hub: h, Page: NewChatPage(), Origins: origins, MaxMessage: hub.DefaultMaxMessage, Logger: log, PingInterval: interval})
	dial := func() *websocket.Conn {
		d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: srv.ca.Pool()}}
		ws, _, err := d.Dial("wss://"+srv.addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		return ws
	}
	// A browser reads all the time, and its reading answers pings.
	alive := dial()
	got := make(chan string, 4)
	go func() {
		for {
			_, p, err := alive.ReadMessage()
			if err != nil {
				close(got)
				return
			}
			got <- string(p)
		}
	}()
	// A dead peer: connected, never reading, never answering.
	dead := dial()
	deadAddr := dead.LocalAddr().String()

	testutil.EventuallyContains(t, logs, `msg="websocket client answers no ping; closing" remote_addr=`+deadAddr, 5*time.Second)
	testutil.EventuallyContains(t, logs, `reason=ping_timeout`, time.Second)
	time.Sleep(5 * interval)
	if err := alive.WriteMessage(websocket.BinaryMessage, []byte("<passerelle:ping/>\x00")); err != nil {
		t.Fatal(err)
	}
	select {
	case p, ok := <-got:
		if !ok || p != "<passerelle:pong/>\x00" {
			t.Fatalf("the client that answers pings got %q (open: %v), want its pong", p, ok)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client that answers pings was not answered")
	}
}
