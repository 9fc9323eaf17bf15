package xmlsocket

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzReader checks ReadFrame against the obvious definition (split at each
// NUL), for any input, any maximum and any way the bytes are cut into reads.
func FuzzReader(f *testing.F) {
	f.Add([]byte("a\x00bb\x00"), 8, uint8(0))
	f.Add([]byte("<policy-file-request/>\x00"), 23, uint8(1))
	f.Add([]byte("toolong\x00"), 4, uint8(2))
	f.Add([]byte("partial"), 100, uint8(1))
	f.Add(bytes.Repeat([]byte("x"), 1500), 2000, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, maxFrame int, mode uint8) {
		if maxFrame < 1 || maxFrame > 1<<16 {
			maxFrame = 1 + abs(maxFrame)%(1<<16)
		}
		var src io.Reader = bytes.NewReader(data)
		switch mode % 3 {
		case 1:
			src = iotest.OneByteReader(src)
		case 2:
			src = iotest.HalfReader(src)
		}
		r := NewReaderSize(src, maxFrame, 16+int(mode))
		rest := data
		for {
			frame, err := r.ReadFrame()
			i := bytes.IndexByte(rest, 0)
			switch {
			case i >= 0 && i+1 <= maxFrame:
				if err != nil || !bytes.Equal(frame, rest[:i+1]) {
					t.Fatalf("frame = %q, %v; want %q", frame, err, rest[:i+1])
				}
				rest = rest[i+1:]
				continue
			case i >= 0 || len(rest) >= maxFrame:
				var tl *FrameTooLargeError
				if !errors.As(err, &tl) {
					t.Fatalf("error = %v, want FrameTooLargeError (rest %d bytes, max %d)", err, len(rest), maxFrame)
				}
			case len(rest) == 0:
				if err != io.EOF {
					t.Fatalf("error = %v, want io.EOF", err)
				}
			default:
				if err != io.ErrUnexpectedEOF {
					t.Fatalf("error = %v, want io.ErrUnexpectedEOF", err)
				}
			}
			return
		}
	})
}

func abs(n int) int {
	if n < 0 {
		if n == -n { // math.MinInt
			return 0
		}
		return -n
	}
	return n
}
