package certs

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/smallstep/truststore"
)

// Debian keeps a Java key store in step with the system store:
// update-ca-certificates hands every anchor it adds to its hooks, and the
// hook of ca-certificates-java imports it into this key store under the
// alias "debian:" plus the name of its link in /etc/ssl/certs. It never
// learns of an anchor taken out of /usr/local/share/ca-certificates, though:
// update-ca-certificates only reports removals it was asked for in
// /etc/ca-certificates.conf ("0 added, 0 removed"), so the copy stays in Java
// after the system store has forgotten it. UninstallTrust removes it.
const (
	debianJavaCacerts = "/etc/ssl/certs/java/cacerts"
	// debianCacertsDefaults may set storepass, the key store's password.
	debianCacertsDefaults = "/etc/default/cacerts"
	defaultStorePass      = "changeit"
)

// debianJavaAlias is the alias Debian's Java hook gives the anchor
// <entry>.crt: the name update-ca-certificates gives its link in
// /etc/ssl/certs (spaces and commas become _, parentheses =), with
// "debian:" before it, in lower case as key store aliases are.
func debianJavaAlias(entry string) string {
	r := strings.NewReplacer(" ", "_", ",", "_", "(", "=", ")", "=")
	return "debian:" + strings.ToLower(r.Replace(entry)) + ".pem"
}

// JavaAliasLeftError says that a Java key store still holds the CA and how
// to take it out by hand.
type JavaAliasLeftError struct {
	Store string // the key store file
	Alias string
	// StorePass is what to type after -storepass in the advice.
	StorePass string
	Reason    string // why passerelle did not remove it
}

func (e *JavaAliasLeftError) Error() string {
	return fmt.Sprintf("%s still holds the CA as alias %s (%s): remove it with: keytool -delete -keystore %s -storepass %s -alias %s",
		e.Store, e.Alias, e.Reason, e.Store, e.StorePass, e.Alias)
}

// removeJavaAlias deletes alias from the key store file store when it is
// there, with keytool. It reports whether it removed it; a store that holds
// the alias but cannot be changed gives a *JavaAliasLeftError.
func removeJavaAlias(store, alias string) (bool, error) {
	pass, advicePass := javaStorePass()
	keytool := findKeytool()
	present, err := javaStoreHas(store, alias, pass, keytool)
	if err != nil {
		return false, err
	}
	if !present {
		return false, nil
	}
	left := &JavaAliasLeftError{Store: store, Alias: alias, StorePass: advicePass}
	if keytool == "" {
		left.Reason = "keytool was not found: set JAVA_HOME or put keytool on PATH"
		return false, left
	}
	// Through sudo when not root, as the truststore library changes the
	// system store.
	out, err := truststore.CommandWithSudo(keytool, "-delete", "-noprompt", "-keystore", store, "-storepass", pass, "-alias", alias).CombinedOutput()
	if err != nil {
		left.Reason = fmt.Sprintf("keytool -delete failed: %v: %s", err, strings.TrimSpace(string(out)))
		return false, left
	}
	return true, nil
}

// javaStoreHas reads a JKS key store itself, so that no Java runtime is
// needed to know; other formats (PKCS#12) are asked to keytool.
func javaStoreHas(store, alias, pass, keytool string) (bool, error) {
	data, err := readFileLimit(store, 64<<20)
	if err != nil {
		return false, fmt.Errorf("read Java key store: %w", err)
	}
	if aliases, err := jksAliases(data); err == nil {
		for _, a := range aliases {
			if a == alias {
				return true, nil
			}
		}
		return false, nil
	} else if !errors.Is(err, errNotJKS) {
		return false, fmt.Errorf("read Java key store %s: %w", store, err)
	}
	if keytool == "" {
		return false, fmt.Errorf("%s is not a JKS key store and keytool was not found to read it: check it for alias %s", store, alias)
	}
	// keytool -list -alias exits 1 when the alias is not there.
	cmd := exec.Command(keytool, "-list", "-keystore", store, "-storepass", pass, "-alias", alias)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee) && bytes.Contains(out, []byte("does not exist")):
		return false, nil
	default:
		return false, fmt.Errorf("keytool -list %s: %v: %s", store, err, strings.TrimSpace(string(out)))
	}
}

// findKeytool is the keytool of JAVA_HOME, else the one on PATH, else "".
func findKeytool() string {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		if p, err := exec.LookPath(filepath.Join(home, "bin", "keytool")); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("keytool"); err == nil {
		return p
	}
	return ""
}

// javaStorePass is Debian's key store password (storepass in
// /etc/default/cacerts, "changeit" unless changed) and how to write it in
// advice: a password the administrator chose is not printed.
func javaStorePass() (pass, advice string) {
	f, err := os.Open(debianCacertsDefaults)
	if err != nil {
		return defaultStorePass, defaultStorePass
	}
	defer f.Close()
	pass = defaultStorePass
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "storepass="); ok {
			pass = strings.Trim(v, `'"`)
		}
	}
	if pass == defaultStorePass {
		return pass, pass
	}
	return pass, "<storepass in " + debianCacertsDefaults + ">"
}

func readFileLimit(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, nil
}

var errNotJKS = errors.New("not a JKS key store")

// jksAliases lists the aliases of a JKS key store (Sun's format: magic
// FEEDFEED, version 1 or 2, then the entries; see
// sun.security.provider.JavaKeyStore.engineLoad). The integrity digest is
// not checked: only the names are read.
func jksAliases(data []byte) ([]string, error) {
	r := jksReader{b: data}
	if r.u32() != 0xFEEDFEED {
		return nil, errNotJKS
	}
	version := r.u32()
	if version != 1 && version != 2 {
		return nil, fmt.Errorf("JKS version %d", version)
	}
	n := r.u32()
	var aliases []string
	for i := uint32(0); i < n && r.err == nil; i++ {
		tag := r.u32()
		aliases = append(aliases, r.utf())
		r.skip(8) // creation date
		certs := 1
		switch tag {
		case 1: // private key, then its chain
			r.skip(int(r.u32()))
			certs = int(r.u32())
		case 2: // trusted certificate
		default:
			return nil, fmt.Errorf("JKS entry %d: unknown tag %d", i, tag)
		}
		for j := 0; j < certs && r.err == nil; j++ {
			if version == 2 {
				r.utf() // certificate type
			}
			r.skip(int(r.u32()))
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return aliases, nil
}

type jksReader struct {
	b   []byte
	err error
}

func (r *jksReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errors.New("truncated JKS key store")
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *jksReader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (r *jksReader) skip(n int) { r.take(n) }

// utf reads a Java modified-UTF-8 string; aliases are ASCII in practice.
func (r *jksReader) utf() string {
	p := r.take(2)
	if p == nil {
		return ""
	}
	return string(r.take(int(binary.BigEndian.Uint16(p))))
}
