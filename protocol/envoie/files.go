package envoie

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// Files is the tree a Server streams from: a folder opened with OpenDir, the
// embedded sample set from Samples, or any fs.FS through FromFS.
//
// Names given to Open and ReadDir have passed ValidateName. Open may return
// any kind of file; the server refuses what is not a regular file, after
// Stat on the opened file, so a name swapped for a FIFO between two checks
// is still refused.
type Files interface {
	Open(name string) (fs.File, error)
	ReadDir(name string) ([]fs.DirEntry, error)
}

// Dir is a folder served through an os.Root: every name resolves inside it,
// and symbolic links that lead out of it are refused by the kernel-backed
// checks of os.Root rather than by string inspection.
//
// A name with a leading dot in any of its elements (.env, .git/config,
// a/.hidden/b) is not served unless WithDotfiles(true) says so: it is
// refused as a missing name, and left out of listings. Such files are
// usually a tool's or an editor's, not meant for the public.
type Dir struct {
	root     *os.Root
	dotfiles bool
}

var _ Files = (*Dir)(nil)

// A DirOption tunes OpenDir.
type DirOption func(*Dir)

// WithDotfiles serves names with a leading dot in any element when allow
// is true (they are not served by default).
func WithDotfiles(allow bool) DirOption {
	return func(d *Dir) { d.dotfiles = allow }
}

// OpenDir opens path as the root of the served tree, without dotfiles
// unless an option says otherwise. Close it when the server is done.
func OpenDir(path string, opts ...DirOption) (*Dir, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("asset folder: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("asset folder %s: not a directory", path)
	}
	r, err := os.OpenRoot(path)
	if err != nil {
		return nil, fmt.Errorf("asset folder: %w", err)
	}
	d := &Dir{root: r}
	for _, o := range opts {
		o(d)
	}
	return d, nil
}

// Open opens name for reading without blocking: opening a FIFO for reading
// would otherwise wait for a writer, and the server only refuses it after
// looking at the opened file.
func (d *Dir) Open(name string) (fs.File, error) {
	if err := d.hidden(name); err != nil {
		return nil, err
	}
	f, err := d.root.OpenFile(name, os.O_RDONLY|openNonBlock, 0)
	if err != nil {
		// A socket cannot be opened at all (ENXIO); say what it is
		// rather than that it cannot be read.
		if st, serr := d.root.Stat(name); serr == nil && !st.Mode().IsRegular() {
			return nil, notRegular(name, st.Mode())
		}
		return nil, err
	}
	return f, nil
}

// ReadDir lists a folder inside the root ("." for the root itself),
// without its dotfiles unless they are served.
func (d *Dir) ReadDir(name string) ([]fs.DirEntry, error) {
	if name != "." {
		if err := d.hidden(name); err != nil {
			return nil, err
		}
	}
	entries, err := fs.ReadDir(d.root.FS(), name)
	if err != nil || d.dotfiles {
		return entries, err
	}
	return slices.DeleteFunc(entries, func(e fs.DirEntry) bool { return strings.HasPrefix(e.Name(), ".") }), nil
}

// hidden refuses a name with a dotfile element when those are not served.
func (d *Dir) hidden(name string) error {
	if d.dotfiles || !hasDotElement(name) {
		return nil
	}
	return concealed(CodeNotFound, nil, "%s has an element starting with a dot (dotfiles are not served)", quoteName(name))
}

// hasDotElement reports whether an element of the slash-separated name
// starts with a dot.
func hasDotElement(name string) bool {
	for elem := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(elem, ".") {
			return true
		}
	}
	return false
}

// Path is the folder being served.
func (d *Dir) Path() string { return d.root.Name() }

// Close releases the folder.
func (d *Dir) Close() error { return d.root.Close() }

// fsFiles adapts an fs.FS.
type fsFiles struct{ fsys fs.FS }

// FromFS serves an fs.FS (an embed.FS, an fstest.MapFS, ...). The fs.FS
// decides what its names mean; fs.FS implementations refuse ".." by contract.
func FromFS(fsys fs.FS) Files { return fsFiles{fsys} }

func (f fsFiles) Open(name string) (fs.File, error)          { return f.fsys.Open(name) }
func (f fsFiles) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(f.fsys, name) }

//go:embed samples
var samples embed.FS

// Samples is the small embedded set served when no folder is configured:
// a text file, a PNG picture and a binary blob.
func Samples() Files {
	sub, err := fs.Sub(samples, "samples")
	if err != nil {
		panic(err) // the embedded folder name is fixed at build time
	}
	return FromFS(sub)
}
