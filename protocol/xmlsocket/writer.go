package xmlsocket

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrNULInMessage is returned by WriteFrame and AppendFrame when a message
// contains a NUL byte before its end: the peer would read it as two frames.
var ErrNULInMessage = errors.New("xmlsocket: message contains a NUL byte")

// AppendFrame appends msg and its terminating NUL to dst. A msg that already
// ends with a NUL is taken as a whole frame and not given a second one, so a
// frame returned by Reader.ReadFrame passes through unchanged.
func AppendFrame(dst, msg []byte) ([]byte, error) {
	body := msg
	if len(body) > 0 && body[len(body)-1] == 0 {
		body = body[:len(body)-1]
	}
	if bytes.IndexByte(body, 0) >= 0 {
		return dst, ErrNULInMessage
	}
	dst = append(dst, body...)
	return append(dst, 0), nil
}

// WriteFrame writes msg followed by a NUL to w in a single Write call (one TLS
// record for short messages). A msg that already ends with a NUL is written
// as it is.
func WriteFrame(w io.Writer, msg []byte) error {
	frame, err := AppendFrame(make([]byte, 0, len(msg)+1), msg)
	if err != nil {
		return err
	}
	if _, err := w.Write(frame); err != nil {
		return fmt.Errorf("xmlsocket: write frame: %w", err)
	}
	return nil
}
