package xmlsocket

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll reads frames until an error and returns them with that error.
func readAll(r *Reader) ([]string, error) {
	var frames []string
	for {
		f, err := r.ReadFrame()
		if err != nil {
			return frames, err
		}
		frames = append(frames, string(f))
	}
}

func TestReadFrameSplits(t *testing.T) {
	long := strings.Repeat("é", 700) // 1400 bytes: longer than DefaultBufferSize
	stream := "hello\x00<msg a=\"1\"/>\x00\x00" + long + "\x00last\x00"
	want := []string{"hello\x00", "<msg a=\"1\"/>\x00", "\x00", long + "\x00", "last\x00"}
	wrappers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"one byte", iotest.OneByteReader},
		{"half", iotest.HalfReader},
		{"data with EOF", iotest.DataErrReader},
		{"timeouts", iotest.TimeoutReader},
	}
	for _, w := range wrappers {
		for _, size := range []int{16, 17, DefaultBufferSize, 4096} {
			t.Run(w.name, func(t *testing.T) {
				r := NewReaderSize(w.wrap(strings.NewReader(stream)), 2000, size)
				var got []string
				var err error
				for {
					var f []byte
					f, err = r.ReadFrame()
					if errors.Is(err, iotest.ErrTimeout) {
						continue // a temporary error keeps the frame being read
					}
					if err != nil {
						break
					}
					got = append(got, string(f))
				}
				if err != io.EOF {
					t.Fatalf("size %d: final error = %v, want io.EOF", size, err)
				}
				if strings.Join(got, "|") != strings.Join(want, "|") {
					t.Fatalf("size %d: frames = %q, want %q", size, got, want)
				}
			})
		}
	}
}

func TestReadFrameTruncated(t *testing.T) {
	tests := []struct {
		name    string
		stream  string
		frames  []string
		wantErr error
	}{
		{"empty stream", "", nil, io.EOF},
		{"clean end", "a\x00b\x00", []string{"a\x00", "b\x00"}, io.EOF},
		{"end inside first frame", "abc", nil, io.ErrUnexpectedEOF},
		{"end inside later frame", "a\x00bc", []string{"a\x00"}, io.ErrUnexpectedEOF},
		{"end inside long frame", strings.Repeat("x", 3000), nil, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frames, err := readAll(NewReader(iotest.HalfReader(strings.NewReader(tt.stream)), 4096))
			if err != tt.wantErr {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if strings.Join(frames, "|") != strings.Join(tt.frames, "|") {
				t.Fatalf("frames = %q, want %q", frames, tt.frames)
			}
		})
	}
}

func TestReadFrameTooLarge(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		stream string
		frames []string
	}{
		{"exactly max passes", 4, "abc\x00abcd\x00", []string{"abc\x00"}},
		{"no NUL within max", 10, strings.Repeat("y", 50), nil},
		{"long frame after short ones", 600, "ok\x00" + strings.Repeat("z", 5000) + "\x00", []string{"ok\x00"}},
		{"frame spanning buffer over max", 520, strings.Repeat("q", 519) + "\x00" + strings.Repeat("q", 520) + "\x00", []string{strings.Repeat("q", 519) + "\x00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &countingReader{r: strings.NewReader(tt.stream)}
			r := NewReader(iotest.OneByteReader(src), tt.max)
			frames, err := readAll(r)
			var tooLarge *FrameTooLargeError
			if !errors.As(err, &tooLarge) || tooLarge.Max != tt.max {
				t.Fatalf("error = %v, want *FrameTooLargeError{Max: %d}", err, tt.max)
			}
			if want := "xmlsocket: frame longer than the maximum of " + itoa(tt.max) + " bytes"; err.Error() != want {
				t.Fatalf("message = %q, want %q", err.Error(), want)
			}
			if strings.Join(frames, "|") != strings.Join(tt.frames, "|") {
				t.Fatalf("frames = %q, want %q", frames, tt.frames)
			}
			// The limit is enforced as soon as it is crossed: the reader
			// never reads far past it.
			consumed := 0
			for _, f := range tt.frames {
				consumed += len(f)
			}
			if src.n > consumed+tt.max+1 {
				t.Fatalf("read %d bytes, want at most %d", src.n, consumed+tt.max+1)
			}
			if _, err2 := r.ReadFrame(); err2 != err {
				t.Fatalf("next ReadFrame error = %v, want the same FrameTooLargeError", err2)
			}
		})
	}
}

func TestReadFrameOwnsSlice(t *testing.T) {
	r := NewReader(strings.NewReader("first\x00second\x00"), 100)
	a, _ := r.ReadFrame()
	b, _ := r.ReadFrame()
	if string(a) != "first\x00" || string(b) != "second\x00" {
		t.Fatalf("frames %q %q: a later read overwrote an earlier frame", a, b)
	}
}

func TestReadFrameNoProgress(t *testing.T) {
	r := NewReader(zeroReader{}, 100)
	if _, err := r.ReadFrame(); err != io.ErrNoProgress {
		t.Fatalf("error = %v, want io.ErrNoProgress", err)
	}
}

func TestWriteFrameRoundTrip(t *testing.T) {
	msgs := [][]byte{[]byte("hello"), []byte(""), []byte("<a>é</a>"), []byte("already framed\x00"), bytes.Repeat([]byte("x"), 5000)}
	var buf bytes.Buffer
	for _, m := range msgs {
		if err := WriteFrame(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	frames, err := readAll(NewReader(&buf, 10000))
	if err != io.EOF {
		t.Fatalf("error = %v", err)
	}
	if len(frames) != len(msgs) {
		t.Fatalf("%d frames, want %d", len(frames), len(msgs))
	}
	for i, m := range msgs {
		want := strings.TrimSuffix(string(m), "\x00") + "\x00"
		if frames[i] != want {
			t.Errorf("frame %d = %q, want %q", i, frames[i], want)
		}
	}
}

func TestWriteFrameRejectsInnerNUL(t *testing.T) {
	var buf bytes.Buffer
	err := WriteFrame(&buf, []byte("a\x00b"))
	if err != ErrNULInMessage || err.Error() != "xmlsocket: message contains a NUL byte" {
		t.Fatalf("error = %v, want ErrNULInMessage", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("wrote %q despite the error", buf.Bytes())
	}
}

func TestWriteFrameWriteError(t *testing.T) {
	err := WriteFrame(failWriter{}, []byte("x"))
	if err == nil || err.Error() != "xmlsocket: write frame: broken pipe" {
		t.Fatalf("error = %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// burstReader serves its bursts one per Read call, as a socket does.
type burstReader struct{ bursts [][]byte }

func (b *burstReader) Read(p []byte) (int, error) {
	if len(b.bursts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.bursts[0])
	b.bursts[0] = b.bursts[0][n:]
	if len(b.bursts[0]) == 0 {
		b.bursts = b.bursts[1:]
	}
	return n, nil
}

func TestReaderBufferAdapts(t *testing.T) {
	busy := bytes.Repeat([]byte("0123456789abcde\x00"), 4096) // 64 KiB of 16-byte frames
	src := &burstReader{bursts: [][]byte{busy, []byte("idle\x00")}}
	r := NewReader(src, 1024)
	largest := 0
	for range 4096 {
		if _, err := r.ReadFrame(); err != nil {
			t.Fatal(err)
		}
		largest = max(largest, len(r.buf))
	}
	if largest != MaxBufferSize {
		t.Fatalf("buffer grew to %d during the burst, want %d", largest, MaxBufferSize)
	}
	f, err := r.ReadFrame()
	if err != nil || string(f) != "idle\x00" {
		t.Fatalf("frame = %q, %v", f, err)
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("error = %v, want EOF", err)
	}
	if r.buf != nil {
		t.Fatalf("buffer is %d bytes once the burst is over and the frames read, want none", len(r.buf))
	}
}

func TestReady(t *testing.T) {
	r := NewReader(&burstReader{bursts: [][]byte{[]byte("a\x00b\x00c"), []byte("\x00")}}, 100)
	if r.Ready() {
		t.Fatal("Ready before any read")
	}
	steps := []struct {
		frame string
		ready bool
	}{
		{"a\x00", true},  // "b\x00" is buffered
		{"b\x00", false}, // only "c" is: the next ReadFrame must read
		{"c\x00", false},
	}
	for _, s := range steps {
		f, err := r.ReadFrame()
		if err != nil || string(f) != s.frame {
			t.Fatalf("frame = %q, %v; want %q", f, err, s.frame)
		}
		if r.Ready() != s.ready {
			t.Fatalf("after %q Ready() = %v, want %v", s.frame, !s.ready, s.ready)
		}
	}
}

// sizesReader records the size of each read it is asked for.
type sizesReader struct {
	r     io.Reader
	sizes []int
}

func (s *sizesReader) Read(p []byte) (int, error) {
	s.sizes = append(s.sizes, len(p))
	return s.r.Read(p)
}

// TestReaderIdleHoldsNoBuffer checks that a Reader holds no buffer before
// its first bytes and after a short burst, waits with a read of idleRead
// bytes then, and still gets frames longer than that whole.
func TestReaderIdleHoldsNoBuffer(t *testing.T) {
	long := strings.Repeat("x", 3*idleRead) + "\x00"
	src := &sizesReader{r: &burstReader{bursts: [][]byte{[]byte("hi\x00"), []byte(long), []byte("a\x00b")}}}
	r := NewReader(src, 1024)
	if r.buf != nil {
		t.Fatalf("new Reader holds a %d-byte buffer, want none", len(r.buf))
	}
	steps := []struct {
		frame string
		reads []int // the sizes of the reads this frame took
	}{
		{"hi\x00", []int{idleRead}},
		// A read that fills the idle array takes a buffer for the rest.
		{long, []int{idleRead, DefaultBufferSize - idleRead}},
		{"a\x00", []int{idleRead}},
	}
	for _, s := range steps {
		src.sizes = nil
		f, err := r.ReadFrame()
		if err != nil || string(f) != s.frame {
			t.Fatalf("frame = %q, %v; want %q", f, err, s.frame)
		}
		if !slices.Equal(src.sizes, s.reads) {
			t.Fatalf("frame %.10q took reads of %v bytes, want %v", s.frame, src.sizes, s.reads)
		}
	}
	// "b" is buffered: the Reader keeps its buffer until the frame is done.
	if len(r.buf) != DefaultBufferSize {
		t.Fatalf("buffer is %d bytes with a partial frame in it, want %d", len(r.buf), DefaultBufferSize)
	}
	if _, err := r.ReadFrame(); err != io.ErrUnexpectedEOF {
		t.Fatalf("error = %v, want %v", err, io.ErrUnexpectedEOF)
	}
}

// TestReaderLargeKeepsBuffer checks that a Reader made with a buffer larger
// than DefaultBufferSize (a client reading a busy stream) keeps it between
// bursts and reads into all of it.
func TestReaderLargeKeepsBuffer(t *testing.T) {
	const size = 16 << 10
	src := &sizesReader{r: &burstReader{bursts: [][]byte{[]byte("hi\x00"), []byte("ho\x00")}}}
	r := NewReaderSize(src, 1024, size)
	for _, want := range []string{"hi\x00", "ho\x00"} {
		src.sizes = nil
		f, err := r.ReadFrame()
		if err != nil || string(f) != want {
			t.Fatalf("frame = %q, %v; want %q", f, err, want)
		}
		if !slices.Equal(src.sizes, []int{size}) || len(r.buf) != size {
			t.Fatalf("frame %q took reads of %v bytes, buffer %d; want one read of %d", want, src.sizes, len(r.buf), size)
		}
	}
}

// TestReaderShrinksBeforeLettingGo checks that a buffer grown by a busy
// sender is not let go at the first short read, but shrunk to its starting
// size first: a sender that pauses between bursts is read whole bursts at a
// time, not from a 32-byte read each time.
func TestReaderShrinksBeforeLettingGo(t *testing.T) {
	// 290 frames of 16 bytes: read 32, 512, 1024 and 2048 bytes at a
	// time as the buffer grows, then the last 1,024 into a 4 KiB buffer
	// (neither full nor short).
	const frames = 290
	busy := bytes.Repeat([]byte("0123456789abcde\x00"), frames)
	src := &sizesReader{r: &burstReader{bursts: [][]byte{busy, []byte("a\x00"), []byte("b\x00"), []byte("c\x00")}}}
	r := NewReader(src, 1024)
	for range frames {
		if _, err := r.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	}
	grown := len(r.buf)
	if grown <= DefaultBufferSize {
		t.Fatalf("buffer is %d bytes after a 4 KiB burst, want more than %d", grown, DefaultBufferSize)
	}
	steps := []struct {
		frame string
		read  int // the size of the read the frame took
	}{
		{"a\x00", grown},             // the grown buffer, as the burst left it
		{"b\x00", DefaultBufferSize}, // shrunk after the short read
		{"c\x00", idleRead},          // let go after a second one
	}
	for _, s := range steps {
		src.sizes = nil
		f, err := r.ReadFrame()
		if err != nil || string(f) != s.frame {
			t.Fatalf("frame = %q, %v; want %q", f, err, s.frame)
		}
		if !slices.Equal(src.sizes, []int{s.read}) {
			t.Fatalf("frame %q took reads of %v bytes, want one of %d", s.frame, src.sizes, s.read)
		}
	}
}

// messageReader serves one message per Read, as a WebSocket hands them
// on, and records the size of each read it is asked for. With pending set,
// it says whether another message is left (Pending), as a WebSocket says
// whether its next message has begun to come.
type messageReader struct {
	burstReader
	pending bool
	sizes   []int
}

func (m *messageReader) Read(p []byte) (int, error) {
	m.sizes = append(m.sizes, len(p))
	return m.burstReader.Read(p)
}

func (m *messageReader) Pending() bool { return m.pending && len(m.bursts) > 0 }

// TestReaderKeepsBufferWhilePending checks that a source handing on one
// message per read (every read short) keeps the Reader's buffer while it
// says more is waiting, and that the buffer goes once it says nothing is.
func TestReaderKeepsBufferWhilePending(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pending bool
		reads   []int // the size of the read each frame took
	}{
		{"pending", true, []int{DefaultBufferSize, DefaultBufferSize, DefaultBufferSize}},
		{"silent", false, []int{idleRead, idleRead, idleRead}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &messageReader{burstReader: burstReader{bursts: [][]byte{[]byte("a\x00"), []byte("b\x00"), []byte("c\x00")}}, pending: tc.pending}
			r := NewReader(src, 1024)
			for i, want := range []string{"a\x00", "b\x00", "c\x00"} {
				src.sizes = nil
				f, err := r.ReadFrame()
				if err != nil || string(f) != want {
					t.Fatalf("frame = %q, %v; want %q", f, err, want)
				}
				if !slices.Equal(src.sizes, []int{tc.reads[i]}) {
					t.Fatalf("frame %q took reads of %v bytes, want one of %d", want, src.sizes, tc.reads[i])
				}
			}
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("error = %v, want EOF", err)
			}
			if r.buf != nil {
				t.Fatalf("buffer is %d bytes once nothing is pending, want none", len(r.buf))
			}
		})
	}
}
