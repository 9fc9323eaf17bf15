package web

import (
	"net/http"
	"time"
)

// HTTP limits for the listeners' http.Server. A browser's request headers
// (cookies aside, and these listeners set none) fit well within them.
const (
	// maxHeaderBytes bounds the request line and headers of one request.
	// net/http answers a larger one with 431 Request Header Fields Too
	// Large and closes the connection.
	maxHeaderBytes = 8 << 10
	// readHeaderTimeout bounds the time from the connection (or the end of
	// the previous request) to the end of the request headers, so a client
	// that never finishes its request or its WebSocket upgrade is closed.
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes a kept-alive HTTP connection that sends no new
	// request (a WebSocket, once upgraded, is no longer HTTP and is not
	// concerned).
	idleTimeout = 60 * time.Second
)

// ApplyLimits sets the limits above on srv where it leaves them at zero,
// and bounds each request's headers and body together (ReadTimeout) by the
// read-header timeout: these listeners take no request body, and without
// it a client announcing one and never sending it holds its connection
// while net/http waits to discard it. A handler that takes a connection
// over (a WebSocket) clears the deadline this leaves on it.
func ApplyLimits(srv *http.Server) {
	if srv.MaxHeaderBytes == 0 {
		srv.MaxHeaderBytes = maxHeaderBytes
	}
	if srv.ReadHeaderTimeout == 0 {
		srv.ReadHeaderTimeout = readHeaderTimeout
	}
	if srv.ReadTimeout == 0 {
		srv.ReadTimeout = srv.ReadHeaderTimeout
	}
	if srv.IdleTimeout == 0 {
		srv.IdleTimeout = idleTimeout
	}
}
