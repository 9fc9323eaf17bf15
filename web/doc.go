// Package web is the front door of passerelle's listeners and the HTTP side
// of its chat and asset listeners, for browser clients: OpenFL's HTML5
// target, Ruffle, and a person with a browser.
//
// Every listener hands each connection, past its TLS handshake, to a Door
// (dispatch.go): the one classification step, which tells HTTP, a policy
// request, HTTP/2 and the raw protocol apart by ALPN and first bytes, and
// hands HTTP clients to a ConnServer (connserver.go), the one way a
// connection reaches net/http, configured with the limits below.
//
// # Where to start reading
//
//   - dispatch.go: Door, Door.Serve and its table of kinds.
//   - connserver.go: ConnServer, an http.Server fed accepted connections.
//   - chatpage.go: ChatPage, the chat page served at "/" on a chat
//     listener: one HTML document built into the binary (page/), with no
//     external resource, that talks to the relay over a WebSocket on the
//     same address.
//   - assets.go: Assets, GET and HEAD /NAME on an asset listener, through
//     envoie.ValidateName and the same envoie.Files (an os.Root) as the
//     ENVOIE protocol, with Range requests and ETags.
//   - origins.go: Origins, the websocket.origins check.
//   - limits.go: the HTTP limits (header size, one read deadline for a
//     request's headers and body); assets.go bounds a download that makes
//     no progress, as ENVOIE does.
//   - socket.go: a WebSocket as a byte stream, its keep-alive (a client
//     is alive while it sends or takes what is written to it) and the
//     bound on pings and pongs; framewatch.go: the close frame the library
//     would accept and RFC 6455 does not (1002).
//   - parking: a quiet chat client holds no goroutine (hub.Parkable). The
//     socket waits for the next message below the library
//     (frameWatch.waitMessage), only at a message boundary where the frame
//     watch shows that the library holds nothing unread, so the hub's read
//     deadline never reaches the library (a timed-out read would break it);
//     pings and pongs that come meanwhile are taken there. The connection
//     is detached from ServeConn (httpConn.Detach), and the keep-alive ends
//     a parked client by shutting its reading side, which wakes the hub's
//     Poller, rather than closing a socket the Poller watches.
//
// The lines a client can cause (origin refused, ping_timeout, a download
// cut short) are rate-limited through internal/ratelog.
//
// docs/browser.md is the user's reference.
package web
