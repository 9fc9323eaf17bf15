// Package envoie implements the ENVOIE asset stream of seed 000, the French Flash
// sockets chapter ("Echanger
// des données": a PHP binary socket server and the ActionScript ChargeurFlux
// client), hardened and extended, over any net.Conn (TLS in passerelle).
//
// # The model
//
// A client sends a request line; the server answers with a response; the
// connection carries as many request/response pairs as the client wants.
//
//	request  = "ENVOIE" (" " / ":") name ("\r\n" / "\n")
//	success  = length:uint32be  data[length]
//	failure  = 0xFFFFFFFF  textlen:uint16be  text[textlen]   then close
//
// text is "code: message" (UTF-8), code one of the Code constants. A seed
// client reads 0xFFFFFFFF as the length of a 4 GiB file and waits for it;
// the server closes after the text, so the wait never completes and an error
// is never taken for a file. Files are therefore limited to MaxFileSize
// (0xFFFFFFFE) bytes; larger ones are refused as too_large.
//
// Extensions, which seed clients never send and so never see, reuse the
// same framing: REPRENDS (resume from an offset), EMPREINTE (SHA-256 of a
// file) and LISTE (a folder's entries). docs/assets.md is the user's
// reference for all of it.
//
// Names are slash-separated paths relative to the served root. ValidateName
// refuses the obviously hostile ones before any file-system access; Dir then
// resolves the rest through an os.Root, so symbolic links leading out of the
// root are refused by the same kernel-backed checks whatever their shape;
// finally the opened file must be a regular file (no directories, devices,
// FIFOs or sockets). Dir serves no name with a leading dot in any element
// unless WithDotfiles says so. A name that exists but is not served (a link
// out of the root, a FIFO, a device, a dotfile) is answered exactly as a
// missing one, not_found, with the real code in the log.
//
// The service receives connections already through TLS and already past
// the Flash policy-file check: the listener (package secure) does both for
// every service.
//
// Hostile peers are bounded: a request line must arrive whole within
// Server.RequestTimeout; digests are cached by file identity, at most
// Server.MaxDigests are computed at once, and one stops when its client
// leaves; answered requests log at debug level, and the info lines a peer
// can cause (refusals, aborted transfers) are rate-limited through
// internal/ratelog, one line of each kind per interval with a count.
//
// # Where to start reading
//
// server.go (Server.ServeConn, the per-connection loop and the constant-memory
// copy), request.go (the request grammar and ValidateName), response.go (the
// wire encoding of both answers), files.go (Dir, Samples, FromFS),
// client.go (Client, used by "passerelle get"), digest.go (EMPREINTE, its
// cache and its bound), extensions.go (LISTE).
//
// The server does not accept connections itself: an accept loop such as
// secure.Server hands each (handshaken) connection to Server.ServeConn.
package envoie
