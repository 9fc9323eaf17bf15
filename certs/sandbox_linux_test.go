package certs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// Tests that change trust stores (the system store, Debian's Java key
// store) run in a child process with a private mount namespace, where a
// tmpfs holding a copy of each store folder lies over the real one: the
// commands under test see the machine's stores and change only the copies,
// which vanish with the process. The host's files are compared before and
// after.

// sandboxEnv marks the child process; its value names the options.
const sandboxEnv = "PASSERELLE_TRUST_SANDBOX"

// sandboxOpts says how the child's world differs from the host.
type sandboxOpts struct {
	// hooks replaces the hooks of update-ca-certificates
	// (/etc/ca-certificates/update.d): file name to shell script. None by
	// default, so no hook reaches outside the sandbox (Debian's Java hook
	// goes through dpkg triggers).
	hooks map[string]string
	// noJava hides java and keytool, as on a machine without a Java runtime.
	noJava bool
	// home, when set, is the child's HOME: where the NSS store of the user
	// (~/.pki/nssdb, Firefox profiles) is looked for, read by the truststore
	// library when the process starts.
	home string
}

// sandboxDirs are the folders the child gets copies of: the system store and
// its bundle, Debian's Java key store (in /etc/ssl/certs/java) and its
// pending updates, and the hooks.
func sandboxDirs() []string {
	dirs := []string{
		"/usr/local/share/ca-certificates",
		"/etc/ssl/certs",
		"/var/lib/ca-certificates-java",
		"/etc/ca-certificates/update.d",
		// The user's NSS store, which "ca install" also changes.
		filepath.Join(os.Getenv("HOME"), ".pki", "nssdb"),
	}
	// A Java runtime whose cacerts is its own file, not Debian's link.
	if home := guessJavaHome(); home != "" {
		if real, err := filepath.EvalSymlinks(filepath.Join(home, "lib", "security", "cacerts")); err == nil &&
			!strings.HasPrefix(real, "/etc/ssl/certs/") {
			dirs = append(dirs, filepath.Dir(real))
		}
	}
	return dirs
}

// inTrustSandbox runs the calling test again in a sandboxed child and
// returns false in the parent, which reports the child's result and checks
// that the host's stores are unchanged; in the child it returns true, and
// the test goes on there. It skips where no mount namespace can be made.
func inTrustSandbox(t *testing.T, opts sandboxOpts) bool {
	t.Helper()
	if os.Getenv(sandboxEnv) != "" {
		enterSandbox(t, opts)
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: a private mount namespace, which keeps the host's trust stores untouched, needs root")
	}
	before := snapshotDirs(t, sandboxDirs())
	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	run := strings.Join(parts, "/")
	cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), sandboxEnv+"=1")
	if opts.home != "" {
		cmd.Env = append(cmd.Env, "HOME="+opts.home)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if err != nil && errors.Is(err, syscall.EPERM) {
		t.Skipf("cannot make a private mount namespace (a container without CAP_SYS_ADMIN?): %v", err)
	}
	if after := snapshotDirs(t, sandboxDirs()); after != before {
		t.Errorf("the host's trust stores changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	switch {
	case err != nil:
		t.Fatalf("in a private mount namespace: %v\n%s", err, out)
	case strings.Contains(string(out), "--- SKIP: "+t.Name()):
		t.Skipf("in a private mount namespace:\n%s", out)
	case !strings.Contains(string(out), "--- PASS: "+t.Name()):
		t.Fatalf("the sandboxed test did not run:\n%s", out)
	}
	t.Logf("in a private mount namespace:\n%s", out)
	return false
}

// enterSandbox lays a tmpfs holding a copy of each folder over it. It runs
// in the child, whose mount namespace is private (Go's exec makes the new
// namespace's mounts private, so nothing propagates back to the host).
func enterSandbox(t *testing.T, opts sandboxOpts) {
	t.Helper()
	const hooksDir = "/etc/ca-certificates/update.d"
	mounted := map[string]bool{}
	for _, dir := range sandboxDirs() {
		fi, err := os.Stat(dir)
		if err != nil {
			continue
		}
		tree, err := readTree(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("mode=%04o", fi.Mode().Perm())); err != nil {
			if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
				t.Skipf("cannot mount a tmpfs over %s in a private mount namespace (a container without CAP_SYS_ADMIN?): %v", dir, err)
			}
			t.Fatalf("mount tmpfs on %s: %v", dir, err)
		}
		mounted[dir] = true
		if dir == hooksDir {
			tree = nil // replaced by opts.hooks
		}
		if err := tree.write(dir); err != nil {
			t.Fatal(err)
		}
	}
	if len(opts.hooks) > 0 && !mounted[hooksDir] {
		t.Fatalf("no %s to put the test's hooks in", hooksDir)
	}
	for name, script := range opts.hooks {
		if err := os.WriteFile(filepath.Join(hooksDir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if opts.noJava {
		t.Setenv("JAVA_HOME", "")
		for _, tool := range []string{"java", "keytool"} {
			// /dev/null is not executable: exec.LookPath no longer finds it.
			for i := 0; i < 10; i++ {
				p, err := exec.LookPath(tool)
				if err != nil {
					break
				}
				if err := syscall.Mount("/dev/null", p, "", syscall.MS_BIND, ""); err != nil {
					t.Fatalf("hide %s: %v", p, err)
				}
			}
			if p, err := exec.LookPath(tool); err == nil {
				t.Fatalf("%s still found at %s", tool, p)
			}
		}
	}
}

// tree is a folder's content: regular files, links and folders by relative
// path, in walk order (parents first).
type tree []treeEntry

type treeEntry struct {
	rel    string
	mode   fs.FileMode
	data   []byte
	target string
}

func readTree(root string) (tree, error) {
	var tr tree
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := treeEntry{rel: rel, mode: info.Mode()}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			e.target, err = os.Readlink(p)
		case info.Mode().IsRegular():
			e.data, err = os.ReadFile(p)
		case info.IsDir():
		default:
			return nil
		}
		if err != nil {
			return err
		}
		tr = append(tr, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("copy %s: %w", root, err)
	}
	return tr, nil
}

func (tr tree) write(root string) error {
	for _, e := range tr {
		p := filepath.Join(root, e.rel)
		var err error
		switch {
		case e.mode&fs.ModeSymlink != 0:
			err = os.Symlink(e.target, p)
		case e.mode.IsDir():
			err = os.Mkdir(p, e.mode.Perm())
		default:
			err = os.WriteFile(p, e.data, e.mode.Perm())
		}
		if err != nil {
			return fmt.Errorf("copy into %s: %w", root, err)
		}
	}
	return nil
}

// snapshotDirs describes the folders' content, one line per entry with the
// SHA-256 of each file (the bundle /etc/ssl/certs/ca-certificates.crt, the
// Java key store) and the target of each link.
func snapshotDirs(t *testing.T, dirs []string) string {
	t.Helper()
	var lines []string
	for _, dir := range dirs {
		if _, err := os.Stat(dir); err != nil {
			lines = append(lines, dir+" absent")
			continue
		}
		tr, err := readTree(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range tr {
			sum := sha256.Sum256(e.data)
			lines = append(lines, fmt.Sprintf("%s %v %s %s", filepath.Join(dir, e.rel), e.mode, e.target, hex.EncodeToString(sum[:8])))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
