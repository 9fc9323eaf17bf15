package envoie

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The commands. ENVOIE is the seed's ("Echanger des données": the PHP binary
// server and the ActionScript ChargeurFlux client); the others are
// passerelle's extensions, which a seed client never sends and so never sees.
const (
	// CmdSend asks for a whole file: "ENVOIE name".
	CmdSend = "ENVOIE"
	// CmdResume asks for a file from a byte offset: "REPRENDS offset name".
	CmdResume = "REPRENDS"
	// CmdDigest asks for the SHA-256 of a file: "EMPREINTE name".
	CmdDigest = "EMPREINTE"
	// CmdList asks for the entries of a folder: "LISTE" or "LISTE folder".
	CmdList = "LISTE"
)

// Limits of the protocol.
const (
	// MaxFileSize is the largest file that can be sent: the length word
	// 0xFFFFFFFF is reserved for error responses.
	MaxFileSize = 0xFFFFFFFE
	// MaxName is the longest accepted name, in bytes.
	MaxName = 1024
	// MaxNameElement is the longest accepted path element, in bytes (the
	// usual file-system limit).
	MaxNameElement = 255
	// DefaultMaxRequest is the default bound on a request line, line end
	// included.
	DefaultMaxRequest = 4096
)

// Request is one parsed request line.
type Request struct {
	// Command is one of CmdSend, CmdResume, CmdDigest, CmdList.
	Command string
	// Name is the file (or, for CmdList, the folder; "" for the root).
	Name string
	// Offset is where CmdResume starts; 0 otherwise.
	Offset int64
}

// String renders the request as a line, line end included, as passerelle's
// client sends it.
func (r Request) String() string {
	switch r.Command {
	case CmdResume:
		return fmt.Sprintf("%s %d %s\r\n", r.Command, r.Offset, r.Name)
	case CmdList:
		if r.Name == "" {
			return CmdList + "\r\n"
		}
	}
	return r.Command + " " + r.Name + "\r\n"
}

// errLineTooLong is returned by readLine when no line end comes within the
// limit.
var errLineTooLong = errors.New("request line too long")

// readLine reads one line ending in '\n' without ever buffering more than
// the reader's size. The returned slice is only valid until the next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, errLineTooLong
	}
	return line, err
}

// ParseRequest parses one request line, with or without its line end
// ("\n" or "\r\n"). The command is separated from its argument by a space or
// a colon: the seed's clients use both ("ENVOIE:DSC02602.JPG" and
// "ENVOIE blason.png"). Everything after the separator, up to the line end,
// is the name: names may contain spaces. A refusal comes back as an error
// whose text is what the client is told.
func ParseRequest(line []byte) (Request, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	cmd, arg, hasArg := cutSep(string(line))
	switch cmd {
	case CmdSend, CmdDigest:
		if err := ValidateName(arg); err != nil {
			return Request{}, err
		}
		return Request{Command: cmd, Name: arg}, nil
	case CmdResume:
		off, name, _ := strings.Cut(arg, " ")
		n, err := strconv.ParseUint(off, 10, 64)
		if err != nil || n > MaxFileSize {
			return Request{}, refuse(CodeBadOffset, "offset %s is not a number between 0 and %d", quoteName(off), uint64(MaxFileSize))
		}
		if err := ValidateName(name); err != nil {
			return Request{}, err
		}
		return Request{Command: cmd, Name: name, Offset: int64(n)}, nil
	case CmdList:
		if !hasArg || arg == "" {
			return Request{Command: cmd}, nil
		}
		arg = strings.TrimSuffix(arg, "/")
		if err := ValidateName(arg); err != nil {
			return Request{}, err
		}
		return Request{Command: cmd, Name: arg}, nil
	}
	if !utf8.ValidString(cmd) || len(cmd) > 16 {
		return Request{}, refuse(CodeUnknownCommand, "unknown command; expected ENVOIE followed by a file name")
	}
	return Request{}, refuse(CodeUnknownCommand, "unknown command %q; expected ENVOIE followed by a file name", cmd)
}

// cutSep splits "CMD name" or "CMD:name" at the first space or colon.
func cutSep(s string) (cmd, arg string, ok bool) {
	if i := strings.IndexAny(s, " :"); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// ValidateName checks a requested name before any file-system access. A name
// is a slash-separated relative path: not empty, at most MaxName bytes, valid
// UTF-8, no NUL or other control byte, no backslash, no leading slash, and no
// empty, "." or ".." element. The file system (an os.Root) then refuses
// symbolic links that lead out of the root.
func ValidateName(name string) error {
	switch {
	case name == "":
		return refuse(CodeBadName, "empty file name")
	case len(name) > MaxName:
		return refuse(CodeBadName, "name of %d bytes is longer than %d", len(name), MaxName)
	case !utf8.ValidString(name):
		return refuse(CodeBadName, "name %s is not valid UTF-8", quoteName(name))
	case strings.IndexByte(name, 0) >= 0:
		return refuse(CodeBadName, "name %s contains a NUL byte", quoteName(name))
	case strings.ContainsFunc(name, isControl):
		return refuse(CodeBadName, "name %s contains a control character", quoteName(name))
	case strings.IndexByte(name, '\\') >= 0:
		return refuse(CodeBadName, "name %s contains a backslash; use / between folders", quoteName(name))
	case name[0] == '/':
		return refuse(CodeBadName, "name %s is absolute; names are relative to the served folder", quoteName(name))
	}
	for elem := range strings.SplitSeq(name, "/") {
		switch {
		case elem == "":
			return refuse(CodeBadName, "name %s has an empty path element", quoteName(name))
		case elem == "." || elem == "..":
			return refuse(CodeBadName, "name %s contains a %q element", quoteName(name), elem)
		case len(elem) > MaxNameElement:
			return refuse(CodeBadName, "name %s has an element longer than %d bytes", quoteName(name), MaxNameElement)
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }
