package envoie

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"
)

// maxListing bounds the text of a LISTE answer.
const maxListing = 1 << 20

// list answers LISTE: a success response whose body has one line per entry
// of the folder, sorted by name: "<size>\t<name>\n" for a regular file,
// "-\t<name>/\n" for a folder. Other kinds of entries, and names that
// ValidateName would refuse, are left out: they cannot be fetched.
func (s *Server) list(conn net.Conn, req Request, log *slog.Logger) error {
	if s.Files == nil {
		return refuse(CodeUnavailable, "no files are served here")
	}
	dir := req.Name
	if dir == "" {
		dir = "."
	}
	entries, err := s.Files.ReadDir(dir)
	if err != nil {
		r := classifyOpen(req.Name, err)
		if r.code == CodeUnavailable {
			// Reading a regular file as a folder fails with an error of no
			// particular kind.
			r = refuse(CodeNotRegular, "%s is not a folder", quoteName(req.Name))
		}
		return r
	}
	var body []byte
	for _, e := range entries {
		if ValidateName(e.Name()) != nil {
			continue
		}
		var line []byte
		switch {
		case e.IsDir():
			line = fmt.Appendf(nil, "-\t%s/\n", e.Name())
		case e.Type().IsRegular():
			info, err := e.Info()
			if err != nil {
				continue // removed while listing
			}
			line = fmt.Appendf(strconv.AppendInt(nil, info.Size(), 10), "\t%s\n", e.Name())
		default:
			continue
		}
		if len(body)+len(line) > maxListing {
			break
		}
		body = append(body, line...)
	}
	if err := s.writeBody(conn, body); err != nil {
		return fmt.Errorf("send listing of %q: %w", req.Name, err)
	}
	log.Debug("envoie: listing sent", "name", req.Name, "entries", len(entries))
	return nil
}

// writeBody sends a small success response in one write.
func (s *Server) writeBody(conn net.Conn, body []byte) error {
	_ = conn.SetWriteDeadline(time.Now().Add(s.writeTimeout()))
	_, err := conn.Write(append(AppendHeader(make([]byte, 0, 4+len(body)), int64(len(body))), body...))
	return err
}

// Entry is one line of a listing.
type Entry struct {
	Name  string // ends with "/" for a folder
	Size  int64  // -1 for a folder
	IsDir bool
}
