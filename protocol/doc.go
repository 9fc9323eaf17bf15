// Package protocol groups passerelle's wire formats. It holds no code itself;
// each format lives in its own sub-package:
//
//   - xmlsocket: NUL-terminated frames, the framing of Flash's XMLSocket and of
//     the chat relay (seed 000, the French Flash sockets chapter: "Créer un t'chat
//     multi-utilisateur").
//   - policy: the Flash socket policy file, asked for with
//     "<policy-file-request/>" and a NUL, answered on every listener and on an
//     optional master policy listener (port 843).
//   - echo: the diagnostic echo service of seed 001, the OpenFL/AIR socket
//     chapter (its ServerSocket example): "Connected." on connect, then "Echo -- " and each chunk.
//   - envoie: the ENVOIE asset stream (seed 000, "Echanger des
//     données").
//
// Nothing here imports the chat relay (hub) or any layer above it: the
// browser gateway, which binds WebSocket and HTTPS to the hub and to ENVOIE,
// is the top-level package web.
//
// The codecs take a maximum size and never buffer without bound, whatever the
// peer sends; start reading with xmlsocket.Reader.
package protocol
