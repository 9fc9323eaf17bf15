package web

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/passerelle/passerelle/internal/ratelog"
	"github.com/passerelle/passerelle/protocol/envoie"
)

// notFoundBody is the one answer to a name that is missing, refused by
// envoie.ValidateName, outside the root, a folder or not a regular file:
// the client cannot tell them apart, so a probe learns nothing about the
// tree beyond what it can fetch.
const notFoundBody = "404 not found\n"

// maxHashedETag is the largest file whose ETag is a digest of its content,
// for files without a modification time (the embedded samples).
const maxHashedETag = 4 << 20

// Assets serves GET and HEAD /NAME from the same files as an ENVOIE
// listener, through the same name rules: envoie.ValidateName first, then
// Files (an os.Root for a folder), then a regular-file check. Range
// requests, If-None-Match, If-Modified-Since and HEAD are those of
// http.ServeContent; Content-Type comes from the extension only (never
// sniffed), application/octet-stream when unknown. Folders are not listed.
type Assets struct {
	// Files is the served tree; nil serves nothing (every name is 404).
	Files envoie.Files
	// Origins, when set, refuses requests from pages whose Origin it does
	// not allow (403), and lets allowed pages read the answer with fetch
	// (CORS). Nil allows every origin.
	Origins *Origins
	// Logger receives a debug line per refused request, and an info line
	// per download cut short, rate-limited (internal/ratelog); nil
	// discards.
	Logger *slog.Logger
	// WriteTimeout is how long a download may make no progress before the
	// connection is dropped (default envoie.DefaultWriteTimeout, as for
	// ENVOIE): a client that stops reading cannot hold a connection slot,
	// a file and a buffer forever.
	WriteTimeout time.Duration

	peerLog ratelog.Lazy // the per-client lines, rate-limited
}

func (a *Assets) logger() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}

func (a *Assets) writeTimeout() time.Duration {
	if a.WriteTimeout <= 0 {
		return envoie.DefaultWriteTimeout
	}
	return a.WriteTimeout
}

// logLimited writes an info line a client caused, at most one of each key
// per interval (ratelog).
func (a *Assets) logLimited(key, msg string, args ...any) {
	a.peerLog.Get(a.Logger).Info(key, msg, args...)
}

// ServeHTTP serves one request.
func (a *Assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed: use GET or HEAD", http.StatusMethodNotAllowed)
		return
	}
	if a.Origins != nil && !a.Origins.check(w, r) {
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		// A page of another origin (an OpenFL HTML5 game) may read assets
		// with fetch. No credentials are involved: the answer is the same
		// for everyone.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, ETag, Accept-Ranges")
	}
	pw := newProgressWriter(w, a.writeTimeout())
	defer pw.done()
	w = pw
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	// An asset is data, never a document of this origin: an HTML or SVG
	// file opened directly cannot run script here.
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")

	name := strings.TrimPrefix(r.URL.Path, "/")
	f, size, err := a.open(name)
	if err != nil {
		a.logger().Debug("asset refused",
			"remote_addr", r.RemoteAddr, "name", clip(name, 200), "error", err)
		a.notFound(w)
		return
	}
	defer f.Close()

	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	h.Set("Content-Type", ctype)

	rs, ok := f.file.(io.ReadSeeker)
	if !ok {
		// No seeking: no ranges, no conditional answers; the whole file.
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = io.Copy(w, io.LimitReader(f.file, size))
		a.logCut(r, name, pw)
		return
	}
	if etag := f.etag(rs, size); etag != "" {
		h.Set("ETag", etag)
	}
	http.ServeContent(w, r, name, f.info.ModTime(), rs)
	a.logCut(r, name, pw)
}

// logCut says so when a download was cut short (the client left, or
// stopped reading for the write timeout).
func (a *Assets) logCut(r *http.Request, name string, pw *progressWriter) {
	if pw.err != nil {
		a.logLimited("http_download_cut", "asset download cut short",
			"remote_addr", r.RemoteAddr, "name", clip(name, 200), "bytes", pw.written, "error", pw.err)
	}
}

// progressWriter pushes the connection's write deadline forward as bytes
// go out, at most once a second, the way ENVOIE's transfers do: a slow but
// moving client is fine, one that stopped reading is dropped after the
// timeout. net/http's own WriteTimeout would bound the whole response
// instead, and cut a large download over a slow link.
type progressWriter struct {
	http.ResponseWriter
	rc       *http.ResponseController
	timeout  time.Duration
	deadline time.Time
	written  int64
	err      error // the first write error
}

func newProgressWriter(w http.ResponseWriter, timeout time.Duration) *progressWriter {
	return &progressWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: timeout}
}

func (w *progressWriter) extend() {
	now := time.Now()
	if w.deadline.Sub(now) < w.timeout-time.Second {
		w.deadline = now.Add(w.timeout)
		_ = w.rc.SetWriteDeadline(w.deadline)
	}
}

func (w *progressWriter) WriteHeader(code int) {
	w.extend()
	w.ResponseWriter.WriteHeader(code)
}

func (w *progressWriter) Write(p []byte) (int, error) {
	w.extend()
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

// done bounds what net/http still writes once the handler has returned
// (the end of its buffer): one more timeout.
func (w *progressWriter) done() {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
}

// Unwrap lets http.ResponseController reach net/http's writer.
func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (a *Assets) notFound(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(notFoundBody)))
	w.WriteHeader(http.StatusNotFound)
	_, _ = io.WriteString(w, notFoundBody)
}

// openFile is an opened regular file and what Stat said of it.
type openFile struct {
	file fs.File
	info fs.FileInfo
}

func (f *openFile) Close() error { return f.file.Close() }

// open applies the ENVOIE name rules and opens a regular file.
func (a *Assets) open(name string) (*openFile, int64, error) {
	if a.Files == nil {
		return nil, 0, fmt.Errorf("no files are served here")
	}
	if err := envoie.ValidateName(name); err != nil {
		return nil, 0, err
	}
	file, err := a.Files.Open(name)
	if err != nil {
		return nil, 0, err
	}
	info, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, 0, err
	}
	if !info.Mode().IsRegular() {
		file.Close()
		return nil, 0, fmt.Errorf("%s is not a regular file (%s)", name, info.Mode().Type())
	}
	return &openFile{file: file, info: info}, info.Size(), nil
}

// etag names this version of the file: its size and modification time
// (as nginx does), or, for a file without one (the embedded samples), a
// digest of its content when it is small enough to read twice. "" when
// neither applies.
func (f *openFile) etag(rs io.ReadSeeker, size int64) string {
	if mt := f.info.ModTime(); !mt.IsZero() {
		return fmt.Sprintf(`"%x-%x"`, mt.UnixNano(), size)
	}
	if size > maxHashedETag {
		return ""
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(rs, size)); err != nil {
		return ""
	}
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return ""
	}
	return `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
}
