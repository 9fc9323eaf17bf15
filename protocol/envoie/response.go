package envoie

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// ErrorMarker is the length word of an error response. A seed client reads
// it as a 4 GiB file and waits for 4294967295 bytes; the server sends a few
// bytes of error and closes the connection, so that wait never completes and
// the client can never take the error for a file. Files are therefore limited
// to MaxFileSize (0xFFFFFFFE) bytes.
const ErrorMarker = 0xFFFFFFFF

// maxErrorText bounds the text of an error response.
const maxErrorText = 1024

// AppendHeader appends the 4-byte big-endian length word of a success
// response.
func AppendHeader(b []byte, size int64) []byte {
	return binary.BigEndian.AppendUint32(b, uint32(size))
}

// AppendError appends an error response: the marker 0xFFFFFFFF, a 2-byte
// big-endian length, then that many bytes of UTF-8 text "code: message".
func AppendError(b []byte, code Code, msg string) []byte {
	text := string(code) + ": " + msg
	if len(text) > maxErrorText {
		cut := maxErrorText
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut]
	}
	b = binary.BigEndian.AppendUint32(b, ErrorMarker)
	b = binary.BigEndian.AppendUint16(b, uint16(len(text)))
	return append(b, text...)
}

// ReadHeader reads a response's length word. On an error response it reads
// the error text and returns it as a *RemoteError.
func ReadHeader(r io.Reader) (int64, error) {
	var w [4]byte
	if _, err := io.ReadFull(r, w[:]); err != nil {
		return 0, fmt.Errorf("read length: %w", err)
	}
	n := binary.BigEndian.Uint32(w[:])
	if n != ErrorMarker {
		return int64(n), nil
	}
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return 0, fmt.Errorf("read error response: %w", err)
	}
	text := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(r, text); err != nil {
		return 0, fmt.Errorf("read error response: %w", err)
	}
	return 0, parseRemoteError(string(text))
}

func parseRemoteError(text string) *RemoteError {
	code, msg, ok := strings.Cut(text, ": ")
	if !ok {
		return &RemoteError{Code: CodeUnavailable, Message: text}
	}
	return &RemoteError{Code: Code(code), Message: msg}
}
