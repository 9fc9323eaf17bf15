package envoie

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// Code names why a request was refused. It travels on the wire at the start
// of an error response ("not_found: no such file \"x\"") so that passerelle's
// client, and scripts, can branch on it.
type Code string

// The refusal codes. They are part of the protocol: keep them stable.
const (
	// CodeBadRequest: the request line is malformed or longer than the
	// server's limit.
	CodeBadRequest Code = "bad_request"
	// CodeUnknownCommand: the line does not start with a known command.
	CodeUnknownCommand Code = "unknown_command"
	// CodeBadName: the name is refused before the file system is touched
	// (empty, absolute, "..", NUL or control bytes, invalid UTF-8, too long).
	CodeBadName Code = "bad_name"
	// CodeNotFound: no such file under the root.
	CodeNotFound Code = "not_found"
	// CodeOutsideRoot: the name resolves, through a symbolic link, to a
	// place outside the root. It is logged; the client is answered
	// CodeNotFound, as for a missing name.
	CodeOutsideRoot Code = "outside_root"
	// CodeNotRegular: the name is a directory (or, for LISTE, a file). A
	// device, a FIFO or a socket is logged with this code, and the client
	// is answered CodeNotFound, as for a missing name.
	CodeNotRegular Code = "not_regular"
	// CodeTooLarge: the file does not fit the 4-byte length field
	// (more than MaxFileSize bytes).
	CodeTooLarge Code = "too_large"
	// CodeBadOffset: a resume offset is not a number or lies past the end.
	CodeBadOffset Code = "bad_offset"
	// CodeForbidden: the server may not read the file (permissions).
	CodeForbidden Code = "forbidden"
	// CodeBusy: the server is already computing as many digests as it
	// allows, and none finished within its wait; try again later.
	CodeBusy Code = "busy"
	// CodeUnavailable: any other failure on the server's side.
	CodeUnavailable Code = "unavailable"
)

// RemoteError is a refusal sent by the server, as passerelle's client
// returns it. Message is what the server said, meant for a person.
type RemoteError struct {
	Code    Code
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("server refused: %s: %s", e.Code, e.Message)
}

// refusal is the server-side twin of RemoteError: a request the server
// answers with an error response before closing the connection.
type refusal struct {
	code Code
	msg  string
	err  error // the local cause, for the log only
	// hide answers the client as for a missing name (see concealed).
	hide bool
}

// concealed is the refusal of a name that exists but is not served: a
// symbolic link out of the root, a FIFO, a device, a socket, a name with
// a leading dot. The client gets exactly the answer to a missing name, as
// an HTTPS client gets 404 for all of them, so that a stranger cannot map
// what lies beside the served files; code and the message say what it
// was, in the server's log only.
func concealed(code Code, err error, format string, args ...any) *refusal {
	return &refusal{code: code, msg: fmt.Sprintf(format, args...), err: err, hide: true}
}

// answer is what the client is told of the refusal of a request for name.
func (r *refusal) answer(name string) (Code, string) {
	if r.hide {
		return CodeNotFound, "no such file " + quoteName(name)
	}
	return r.code, r.msg
}

func (r *refusal) Error() string { return string(r.code) + ": " + r.msg }
func (r *refusal) Unwrap() error { return r.err }

func refuse(code Code, format string, args ...any) *refusal {
	return &refusal{code: code, msg: fmt.Sprintf(format, args...)}
}

// quoteName quotes a client-supplied name for a message, cut short so a
// hostile name cannot fill the error response or the log.
func quoteName(name string) string {
	const max = 64
	if len(name) > max {
		// Cut on a rune boundary; %q escapes whatever is left.
		cut := max
		for cut > 0 && name[cut]&0xC0 == 0x80 {
			cut--
		}
		return fmt.Sprintf("%q...", name[:cut])
	}
	return fmt.Sprintf("%q", name)
}

// pathEscapes is the text of os's unexported error for a name that leaves
// an os.Root; the standard library offers no sentinel to compare with.
const pathEscapes = "path escapes from parent"

// classifyOpen turns an error from Files.Open into the refusal the client
// sees. The messages never contain server paths.
func classifyOpen(name string, err error) *refusal {
	var r *refusal
	if errors.As(err, &r) {
		return r
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Err != nil && pe.Err.Error() == pathEscapes {
		return concealed(CodeOutsideRoot, err, "%s leads outside the served folder", quoteName(name))
	}
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return &refusal{code: CodeNotFound, msg: fmt.Sprintf("no such file %s", quoteName(name)), err: err}
	case errors.Is(err, syscall.ELOOP):
		return concealed(CodeNotFound, err, "%s: too many symbolic links", quoteName(name))
	case errors.Is(err, fs.ErrPermission):
		return &refusal{code: CodeForbidden, msg: fmt.Sprintf("%s may not be read", quoteName(name)), err: err}
	case errors.Is(err, syscall.ENAMETOOLONG):
		return &refusal{code: CodeBadName, msg: fmt.Sprintf("name %s is too long", quoteName(name)), err: err}
	case errors.Is(err, fs.ErrInvalid):
		return &refusal{code: CodeBadName, msg: fmt.Sprintf("name %s is not valid", quoteName(name)), err: err}
	}
	return &refusal{code: CodeUnavailable, msg: fmt.Sprintf("%s cannot be read", quoteName(name)), err: err}
}

// notRegular refuses a name that is not a regular file. A folder is said
// to be one (LISTE shows folders); anything else is concealed.
func notRegular(name string, m fs.FileMode) *refusal {
	if m.IsDir() {
		return refuse(CodeNotRegular, "%s is a directory, not a file", quoteName(name))
	}
	return concealed(CodeNotRegular, nil, "%s is %s, not a file", quoteName(name), describeMode(m))
}

// describeMode says what a non-regular file is, for a not_regular refusal.
func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file"
}
