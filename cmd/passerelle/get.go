package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/passerelle/passerelle/internal/termsafe"
	"github.com/passerelle/passerelle/protocol/envoie"
)

// getOptions is what "passerelle get" was asked to do.
type getOptions struct {
	addr, name string
	output     string // "" (the name's base), "-" (stdout), a file or a folder
	caFile     string
	serverName string
	plain      bool
	resume     bool
	force      bool
	verify     bool
	list       bool
	dataDir    string
	timeout    time.Duration
}

// getLong is get --help's description.
const getLong = `get asks an ENVOIE asset server (passerelle serve's asset listener, port 10001
by default, or any server speaking the seed's protocol) for one file and saves it.

It trusts the local CA of the data folder automatically (the one passerelle
serve created), the system roots, and the CA file given with --ca; --plain
talks to a listener without TLS.

The download goes to FILE.part next to FILE and is renamed to FILE only once
exactly the announced number of bytes has arrived, so an interrupted download
never looks complete. The partial file is kept: --resume continues it from
where it stopped (passerelle's REPRENDS extension). --verify compares the
SHA-256 of what was saved with the server's (EMPREINTE extension).

An existing FILE is never replaced without --force (or --resume, which
finishes a download into FILE): get refuses before connecting, and writes
nothing.

A progress bar is drawn on a terminal; in a pipe get is quiet. -o - writes to
standard output; a device such as /dev/null is written to directly.

--timeout bounds connecting, the TLS handshake, and each wait for the
server's answer or its next bytes: a port that never answers (the chat
relay's) ends get with "does not seem to serve ENVOIE", as does one that
answers in text.

With --list, NAME is a folder (optional) and get prints its entries, one per
line: the size in bytes (or - for a folder), a tab, the name.

Text from the server (names in a listing, the words of a refusal) is shown
with control characters escaped (\x1b, \u009b, ...), so a hostile server
cannot write to the terminal.`

func newGetCmd(a *app) *cobra.Command {
	var o getOptions
	cmd := &cobra.Command{
		Use:   "get HOST:PORT NAME [-o FILE]",
		Short: "Download a file from an ENVOIE asset stream",
		Long:  getLong,
		Example: `  passerelle get localhost:10001 blason.png
  passerelle get localhost:10001 videos/intro.flv -o intro.flv --resume --verify
  passerelle get localhost:10001 blason.png -o blason.png --force   # replace the old copy
  passerelle get assets.example.org:10001 big.bin -o /dev/null --ca ./root.pem
  passerelle get localhost:10001 bienvenue.txt -o - | less
  passerelle get localhost:10001 --list
  passerelle get assets.example.org:10001 big.bin --timeout 30s`,
		Args: func(cmd *cobra.Command, args []string) error {
			if o.list && (len(args) == 1 || len(args) == 2) {
				return nil
			}
			if len(args) != 2 {
				return fmt.Errorf("get needs the server's address and a file name, as HOST:PORT NAME (got %d argument(s))", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.addr = args[0]
			if len(args) > 1 {
				o.name = args[1]
			}
			o.dataDir = a.dataDir()
			// A refusal quotes the server's words: escape them.
			return termsafe.Error(a.runGet(cmd.Context(), o))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "where to save the file: a file, a folder, or - for standard output (default: the file's own name, in the current folder)")
	f.StringVar(&o.caFile, "ca", "", "PEM file of a CA to trust besides the local CA and the system roots")
	f.StringVar(&o.serverName, "servername", "", "the name to ask for in TLS (SNI) and to verify (default: the host of HOST:PORT)")
	f.BoolVar(&o.plain, "plain", false, "connect without TLS (a listener with tls.mode off)")
	f.BoolVar(&o.resume, "resume", false, "continue a partial download (FILE.part) instead of starting over")
	f.BoolVar(&o.force, "force", false, "replace FILE if it exists")
	f.BoolVar(&o.verify, "verify", false, "check the saved file's SHA-256 against the server's")
	f.BoolVar(&o.list, "list", false, "list a folder of the server instead of downloading")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "time allowed to connect and finish the TLS handshake, and for each wait for the server's answer or its next bytes")
	return cmd
}

// runGet dials, then lists or downloads.
func (a *app) runGet(ctx context.Context, o getOptions) error {
	if _, _, err := net.SplitHostPort(o.addr); err != nil {
		return fmt.Errorf("address %q: want HOST:PORT", o.addr)
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout %s: must be positive", o.timeout)
	}
	var target getTarget
	if !o.list {
		var err error
		if target, err = resolveGetTarget(o.name, o.output); err != nil {
			return err
		}
		if err := target.checkFree(o.force || o.resume); err != nil {
			return err
		}
	}
	raw, err := a.dial(ctx, clientDial{addr: o.addr, dataDir: o.dataDir, caFile: o.caFile, serverName: o.serverName, plain: o.plain, timeout: o.timeout})
	if err != nil {
		return err
	}
	conn := newGetConn(ctx, raw, o.timeout)
	c := envoie.NewClient(conn)
	defer c.Close()
	if o.list {
		err := a.listAssets(ctx, c, o.name)
		if why, ok := conn.explain(o.addr, err); ok {
			return fmt.Errorf("list %q: %w", o.name, why)
		}
		return err
	}
	return a.download(ctx, c, conn, o, target)
}

func (a *app) listAssets(ctx context.Context, c *envoie.Client, dir string) error {
	entries, err := c.List(ctx, dir)
	if err != nil {
		return fmt.Errorf("list %q: %w", dir, err)
	}
	for _, e := range entries {
		size := "-"
		if !e.IsDir {
			size = fmt.Sprint(e.Size)
		}
		if _, err := fmt.Fprintf(a.out, "%s\t%s\n", size, termsafe.Escape(e.Name)); err != nil {
			return err
		}
	}
	return nil
}

// getTarget is where a download goes.
type getTarget struct {
	path   string // final file; "" for standard output
	direct bool   // write to path as is: a device, a FIFO, standard output
}

// checkFree refuses a target file that already exists unless replace is
// set, as cert issue does without --force. It looks at the name itself
// (Lstat): a link there, even a dangling one, is something to keep too.
func (t getTarget) checkFree(replace bool) error {
	if t.direct || replace {
		return nil
	}
	_, err := os.Lstat(t.path)
	switch {
	case err == nil:
		return fmt.Errorf("%s already exists: use --force to replace it, or -o for another file", t.path)
	case errors.Is(err, fs.ErrNotExist):
		return nil
	default:
		return fmt.Errorf("-o %s: %w", t.path, err)
	}
}

// resolveGetTarget decides where the file goes from -o and the remote name.
func resolveGetTarget(name, output string) (getTarget, error) {
	if output == "-" {
		return getTarget{direct: true}, nil
	}
	base := path.Base(name)
	derive := func() (string, error) {
		if base == "." || base == "/" || base == ".." || base == "" || strings.ContainsAny(base, "\\\x00") {
			return "", fmt.Errorf("cannot make a file name out of %q: give one with -o FILE", name)
		}
		return base, nil
	}
	if output == "" {
		p, err := derive()
		return getTarget{path: p}, err
	}
	st, err := os.Stat(output)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return getTarget{path: output}, nil
	case err != nil:
		return getTarget{}, fmt.Errorf("-o %s: %w", output, err)
	case st.IsDir():
		p, err := derive()
		return getTarget{path: filepath.Join(output, p)}, err
	case !st.Mode().IsRegular():
		// /dev/null, a FIFO: renaming over it would be wrong.
		return getTarget{path: output, direct: true}, nil
	}
	return getTarget{path: output}, nil
}

// download saves one file, through FILE.part unless the target is written
// directly.
// downloadDirect writes the file straight to standard output or to a
// device (-o /dev/null): there is no partial file to keep.
func (a *app) downloadDirect(ctx context.Context, c *envoie.Client, conn *getConn, o getOptions, t getTarget, h hash.Hash, bar *getBar) error {
	var w io.Writer = a.out
	if t.path != "" {
		f, err := os.OpenFile(t.path, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("-o %s: %w", t.path, err)
		}
		defer f.Close()
		w = f
	}
	if h != nil {
		w = io.MultiWriter(w, h)
	}
	if err := c.Get(ctx, o.name, w, bar.update); err != nil {
		err, _ = conn.explain(o.addr, err)
		return fmt.Errorf("get %s: %w", o.name, err)
	}
	return verifyDigest(ctx, c, o.name, h)
}

// openPart opens the partial file of a download, at its end when resuming
// (what is already there is hashed first, as the digest covers the whole
// file), and says from which offset the download goes on.
func openPart(part string, resume bool, h hash.Hash) (*os.File, int64, error) {
	flags := os.O_WRONLY | os.O_CREATE
	if !resume {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return nil, 0, fmt.Errorf("open %s: %w", part, err)
	}
	var offset int64
	if resume {
		if offset, err = f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("resume %s: %w", part, err)
		}
		if h != nil && offset > 0 {
			if err := hashPrefix(h, part, offset); err != nil {
				f.Close()
				return nil, 0, fmt.Errorf("resume %s: %w", part, err)
			}
		}
	}
	return f, offset, nil
}

func (a *app) download(ctx context.Context, c *envoie.Client, conn *getConn, o getOptions, t getTarget) error {
	var h hash.Hash
	if o.verify {
		h = sha256.New()
	}
	bar := a.newGetBar(o.name)
	defer bar.finish()

	if t.direct {
		return a.downloadDirect(ctx, c, conn, o, t, h, bar)
	}

	part := t.path + ".part"
	f, offset, err := openPart(part, o.resume, h)
	if err != nil {
		return err
	}
	defer f.Close() // after the explicit Close on success: harmless
	var total int64 = -1
	var w io.Writer = f
	if h != nil {
		w = io.MultiWriter(f, h)
	}
	err = c.GetFrom(ctx, o.name, offset, w, func(n, tot int64) { total = tot; bar.update(n, tot) })
	if err != nil {
		why, notEnvoie := conn.explain(o.addr, err)
		if notEnvoie && offset == 0 {
			// What arrived is another protocol's text, not the file.
			os.Remove(part)
			return fmt.Errorf("get %s: %w", o.name, why)
		}
		return a.failedDownload(o, part, offset, why)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("save %s: %w", part, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save %s: %w", part, err)
	}
	// The client already checked the count; check what the disk holds too
	// before the file takes its final name.
	if st, err := os.Stat(part); err != nil || st.Size() != total {
		return fmt.Errorf("save %s: the file holds %d bytes, the server announced %d", part, sizeOf(st), total)
	}
	if err := verifyDigest(ctx, c, o.name, h); err != nil {
		// Known-bad data is worth nothing, and left in place a later
		// --resume would only append to it.
		os.Remove(part)
		return fmt.Errorf("%w; the download was discarded", err)
	}
	if err := os.Rename(part, t.path); err != nil {
		return fmt.Errorf("save %s: %w", t.path, err)
	}
	return nil
}

// failedDownload explains a failure and what became of the partial file.
func (a *app) failedDownload(o getOptions, part string, offset int64, err error) error {
	var re *envoie.RemoteError
	if errors.As(err, &re) {
		if re.Code == envoie.CodeBadOffset {
			return fmt.Errorf("get %s: %w; %s is longer than the file on the server: delete it and start again", o.name, err, part)
		}
		if offset == 0 {
			os.Remove(part) // nothing was received
		}
		return fmt.Errorf("get %s: %w", o.name, err)
	}
	if o.plain && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)) {
		// A TLS listener answers a plain request with an alert or a
		// message, which reads as a huge length and then ends.
		err = fmt.Errorf("%w; the server may be a TLS listener: try without --plain", err)
	}
	st, serr := os.Stat(part)
	if serr == nil && st.Size() > 0 {
		return fmt.Errorf("get %s: %w; the %d bytes received are kept in %s: run again with --resume to continue", o.name, err, st.Size(), part)
	}
	os.Remove(part)
	return fmt.Errorf("get %s: %w", o.name, err)
}

func verifyDigest(ctx context.Context, c *envoie.Client, name string, h hash.Hash) error {
	if h == nil {
		return nil
	}
	remote, err := c.Digest(ctx, name)
	if err != nil {
		return fmt.Errorf("verify %s: %w", name, err)
	}
	local := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if remote != local {
		return fmt.Errorf("verify %s: the saved data has %s, the server's file has %s (did it change during the download?)", name, local, remote)
	}
	return nil
}

func sizeOf(st fs.FileInfo) int64 {
	if st == nil {
		return -1
	}
	return st.Size()
}

// hashPrefix feeds the first n bytes of the file at path to h.
func hashPrefix(h hash.Hash, path string, n int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyN(h, f, n)
	return err
}

// getBar draws progress on a terminal and nothing elsewhere.
type getBar struct {
	name string
	w    io.Writer
	bar  *progressbar.ProgressBar
}

func (a *app) newGetBar(name string) *getBar {
	f, ok := a.errOut.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return &getBar{}
	}
	return &getBar{name: name, w: f}
}

func (b *getBar) update(n, total int64) {
	if b.w == nil || total == 0 {
		return // nothing to draw for an empty file
	}
	if b.bar == nil {
		b.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetDescription(b.name),
			progressbar.OptionSetWriter(b.w),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionSetWidth(20),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionShowCount(),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(b.w) }),
		)
	}
	_ = b.bar.Set64(n)
}

func (b *getBar) finish() {
	if b.bar != nil && !b.bar.IsFinished() {
		_ = b.bar.Exit()
	}
}
