// Package web is the HTTP side of passerelle's chat and asset listeners,
// for browser clients: OpenFL's HTML5 target, Ruffle, and a person with a
// browser. It provides net/http handlers only; the listeners decide which
// connections are HTTP (ALPN http/1.1 or an HTTP request line) and hand
// those to an http.Server configured with the limits below.
//
// # Where to start reading
//
//   - chatpage.go: ChatPage, the chat page served at "/" on a chat
//     listener: one HTML document built into the binary (page/), with no
//     external resource, that talks to the relay over a WebSocket on the
//     same address.
//   - assets.go: Assets, GET and HEAD /NAME on an asset listener, through
//     envoie.ValidateName and the same envoie.Files (an os.Root) as the
//     ENVOIE protocol, with Range requests and ETags.
//   - origins.go: Origins, the websocket.origins check.
//   - limits.go: the HTTP limits (header size, read-header timeout).
//
// docs/browser.md is the user's reference.
package web
