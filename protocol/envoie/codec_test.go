package envoie

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"
)

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func TestParseRequest(t *testing.T) {
	tests := []struct {
		line string
		want Request
	}{
		{"ENVOIE:DSC02602.JPG\r\n", Request{Command: CmdSend, Name: "DSC02602.JPG"}},
		{"ENVOIE blason.png\r\n", Request{Command: CmdSend, Name: "blason.png"}},
		{"ENVOIE a b.png\n", Request{Command: CmdSend, Name: "a b.png"}},
		{"ENVOIE a:b\n", Request{Command: CmdSend, Name: "a:b"}},
		{"ENVOIE dossier/image.png", Request{Command: CmdSend, Name: "dossier/image.png"}},
		{"REPRENDS 42 x y\n", Request{Command: CmdResume, Name: "x y", Offset: 42}},
		{"EMPREINTE x\n", Request{Command: CmdDigest, Name: "x"}},
		{"LISTE\n", Request{Command: CmdList}},
		{"LISTE \n", Request{Command: CmdList}},
		{"LISTE a/b/\n", Request{Command: CmdList, Name: "a/b"}},
	}
	for _, tt := range tests {
		got, err := ParseRequest([]byte(tt.line))
		if err != nil || got != tt.want {
			t.Errorf("ParseRequest(%q) = %+v, %v; want %+v", tt.line, got, err, tt.want)
		}
	}
}

func TestRequestString(t *testing.T) {
	for _, r := range []Request{
		{Command: CmdSend, Name: "a b"},
		{Command: CmdResume, Name: "x", Offset: 7},
		{Command: CmdDigest, Name: "d/e"},
		{Command: CmdList},
		{Command: CmdList, Name: "d"},
	} {
		got, err := ParseRequest([]byte(r.String()))
		if err != nil || got != r {
			t.Errorf("round trip of %+v: %+v, %v", r, got, err)
		}
	}
}

func TestErrorResponse(t *testing.T) {
	b := AppendError(nil, CodeNotFound, `no such file "x"`)
	want := append([]byte{0xff, 0xff, 0xff, 0xff, 0, 27}, `not_found: no such file "x"`...)
	if !bytes.Equal(b, want) {
		t.Fatalf("got % x\nwant % x", b, want)
	}
	_, err := ReadHeader(bytes.NewReader(b))
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != CodeNotFound || re.Message != `no such file "x"` {
		t.Fatalf("got %v", err)
	}
	if err.Error() != `server refused: not_found: no such file "x"` {
		t.Fatalf("message %q", err.Error())
	}
	// A long message is cut on a rune boundary.
	long := AppendError(nil, CodeBadName, strings.Repeat("é", 1000))
	if len(long) > 4+2+maxErrorText {
		t.Fatalf("error response of %d bytes", len(long))
	}
	_, err = ReadHeader(bytes.NewReader(long))
	if !errors.As(err, &re) || !strings.HasSuffix(re.Message, "é") {
		t.Fatalf("cut message: %v", err)
	}
}

func TestReadHeaderTruncated(t *testing.T) {
	full := AppendError(nil, CodeNotFound, "gone")
	for i := range len(full) {
		_, err := ReadHeader(bytes.NewReader(full[:i]))
		if err == nil || !(errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			t.Fatalf("prefix of %d bytes: %v", i, err)
		}
	}
	n, err := ReadHeader(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xfe}))
	if err != nil || n != MaxFileSize {
		t.Fatalf("largest length: %d, %v", n, err)
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"ENVOIE:a\r\n", "ENVOIE ../x\n", "REPRENDS 1 a\n", "LISTE\n", "EMPREINTE a/b", "\x00", "ENVOIE a//b"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := ParseRequest(line)
		if err != nil {
			var r *refusal
			if !errors.As(err, &r) || r.code == "" {
				t.Fatalf("error %v is not a refusal", err)
			}
			return
		}
		if req.Name != "" {
			if err := ValidateName(req.Name); err != nil {
				t.Fatalf("accepted name %q fails validation: %v", req.Name, err)
			}
		}
		if req.Offset < 0 || req.Offset > MaxFileSize {
			t.Fatalf("offset %d", req.Offset)
		}
		back, err := ParseRequest([]byte(req.String()))
		if err != nil || back != req {
			t.Fatalf("round trip %+v -> %q -> %+v, %v", req, req.String(), back, err)
		}
	})
}

func FuzzReadHeader(f *testing.F) {
	f.Add([]byte{0, 0, 0, 5})
	f.Add(AppendError(nil, CodeNotFound, "gone"))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 'x'})
	f.Fuzz(func(t *testing.T, in []byte) {
		n, err := ReadHeader(bytes.NewReader(in))
		var re *RemoteError
		switch {
		case err == nil:
			if n < 0 || n > MaxFileSize {
				t.Fatalf("length %d accepted", n)
			}
		case errors.As(err, &re):
			if len(re.Message) > 0xFFFF {
				t.Fatalf("message of %d bytes", len(re.Message))
			}
		}
	})
}
