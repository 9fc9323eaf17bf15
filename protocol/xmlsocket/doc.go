// Package xmlsocket reads and writes the frames of Flash's XMLSocket: UTF-8
// text terminated by a single NUL byte (the seed's chapter on Flash sockets
// with PHP servers: "la classe XMLSocket transmet chaque message en le
// terminant par un octet nul").
//
// Start with Reader: NewReader(r, max) wraps a stream, and ReadFrame returns
// one frame at a time, its trailing NUL included, so that a relay can forward
// it byte for byte. Memory stays bounded whatever the peer sends:
//
//   - the read buffer starts small (DefaultBufferSize), doubles while reads
//     keep filling it (a busy sender, read with few system calls) up to
//     MaxBufferSize, and returns to its small size after a short read; once
//     the frames in it are read, an idle connection holds none at all and
//     waits with a read of a few bytes into the Reader itself;
//   - a frame longer than the buffer is gathered in a slice of its own, which
//     becomes the returned frame, never beyond the maximum frame size;
//   - a frame longer than the maximum yields a *FrameTooLargeError as soon as
//     the limit is crossed, without reading the rest of the frame.
//
// WriteFrame appends the NUL for the caller.
//
// The Reader never inspects the bytes between NULs: validating UTF-8 or XML is
// left to the layer above, since the PHP chat relay of that chapter forwards
// whatever it gets.
package xmlsocket
