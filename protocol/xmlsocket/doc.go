// Package xmlsocket reads and writes the frames of Flash's XMLSocket: UTF-8
// text terminated by a single NUL byte (seed 000: "la classe XMLSocket
// transmet chaque message en le terminant par un octet nul").
//
// Start with Reader: NewReader(r, max) wraps a stream, and ReadFrame returns
// one frame at a time, its trailing NUL included, so that a relay can forward
// it byte for byte. The Reader's buffer starts small (DefaultBufferSize) and
// grows only while a frame longer than it is being read, never beyond the
// maximum frame size; once that frame is consumed the buffer shrinks back, so
// an idle connection holds only the small buffer. A frame longer than the
// maximum yields a *FrameTooLargeError as soon as the limit is crossed,
// without reading the rest of the frame into memory.
//
// WriteFrame appends the NUL for the caller.
//
// The Reader never inspects the bytes between NULs: validating UTF-8 or XML is
// left to the layer above, since the seed's relay forwards whatever it gets.
package xmlsocket
