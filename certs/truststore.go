package certs

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/smallstep/truststore"

	"github.com/passerelle/passerelle/internal/retry"
)

// Trust stores InstallTrust and UninstallTrust know, by the names users
// give them on the command line.
const (
	// StoreSystem is the operating system's store (on Debian,
	// /usr/local/share/ca-certificates + update-ca-certificates), which
	// openssl, curl, Go and most runtimes read.
	StoreSystem = "system"
	// StoreNSS is every Firefox profile and the shared NSS database
	// (~/.pki/nssdb, Chromium on Linux), through certutil.
	StoreNSS = "nss"
	// StoreJava is the cacerts key store of the Java runtime at JAVA_HOME,
	// through keytool.
	StoreJava = "java"
)

// trustStores lists every store, in the order they are processed.
func trustStores() []string { return []string{StoreSystem, StoreNSS, StoreJava} }

// TrustOutcome says what happened to one store.
type TrustOutcome string

// Outcomes of InstallTrust and UninstallTrust, one per store.
const (
	TrustInstalled        TrustOutcome = "installed"
	TrustAlreadyInstalled TrustOutcome = "already installed"
	TrustRemoved          TrustOutcome = "removed"
	TrustNotInstalled     TrustOutcome = "not installed"
	TrustSkipped          TrustOutcome = "skipped"
	TrustFailed           TrustOutcome = "failed"
)

// TrustResult is the outcome for one store.
type TrustResult struct {
	Store   string       `json:"store"`
	Outcome TrustOutcome `json:"outcome"`
	// Detail says where (the file or database touched) or why (the reason a
	// store was skipped, the error of a failure).
	Detail string `json:"detail,omitempty"`
}

// TrustConfig says which stores to touch and how to name the CA there.
type TrustConfig struct {
	// Name is the prefix identifying this CA in every store; the CA's serial
	// number is appended. Use TrustName(dataDir) so that two data folders
	// (two CAs on one machine) never clash and uninstalling one leaves the
	// other alone. Required.
	Name string
	// Stores to touch, among TrustStores(); empty means all of them.
	Stores []string
	// Logger receives one line per store; nil discards.
	Logger *slog.Logger
}

// TrustName is the store name prefix of the CA of a data folder:
// "passerelle-" and the first 8 hex digits of the SHA-256 of the folder's
// absolute path, then a dash. With the serial appended by the truststore
// library, the system store file becomes, on Debian,
// /usr/local/share/ca-certificates/passerelle-1a2b3c4d-<serial>.crt.
func TrustName(dataDir string) string {
	return "passerelle-" + dataDirID(dataDir) + "-"
}

// dataDirID tells data folders apart: the first 8 hex digits of the SHA-256
// of the folder's absolute path. The local CA's name and its trust-store
// entries carry it, so that the CAs of two folders (or two machines' users
// with the same name) can be told apart.
func dataDirID(dataDir string) string {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	sum := sha256.Sum256([]byte(filepath.Clean(abs)))
	return hex.EncodeToString(sum[:4])
}

// TrustEntryName is the full name the CA cert gets in the stores (nickname
// in NSS, alias in Java, file name in the system store).
func TrustEntryName(name string, cert *x509.Certificate) string {
	return name + cert.SerialNumber.String()
}

// TrustStoreError reports the stores that failed; the other stores' results
// are still returned beside it.
type TrustStoreError struct {
	Failed []TrustResult
}

func (e *TrustStoreError) Error() string {
	var parts []string
	for _, r := range e.Failed {
		parts = append(parts, r.Store+": "+r.Detail)
	}
	return "trust store: " + strings.Join(parts, "; ")
}

// truststoreMu serialises calls into the truststore library, which keeps the
// name prefix in a package variable set by its WithPrefix option: two
// concurrent calls with different names would otherwise swap names.
var truststoreMu sync.Mutex

// InstallTrust adds the CA certificate in caFile (PEM) to the stores in
// cfg. Each store gets one TrustResult: installed, already installed, or
// skipped with the reason (certutil missing, no Firefox profile, JAVA_HOME
// unset, not root). A store that fails does not stop the others; the error is
// then a *TrustStoreError listing the failures.
func InstallTrust(ctx context.Context, caFile string, cfg TrustConfig) ([]TrustResult, error) {
	return runTrust(ctx, caFile, cfg, true)
}

// UninstallTrust removes the CA certificate in caFile from the stores in
// cfg; a store not holding it reports "not installed".
func UninstallTrust(ctx context.Context, caFile string, cfg TrustConfig) ([]TrustResult, error) {
	return runTrust(ctx, caFile, cfg, false)
}

func runTrust(ctx context.Context, caFile string, cfg TrustConfig, install bool) ([]TrustResult, error) {
	if cfg.Name == "" {
		return nil, errors.New("trust store: no CA name given")
	}
	stores, err := selectStores(cfg.Stores)
	if err != nil {
		return nil, err
	}
	cert, err := truststore.ReadCertificate(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate %s: %w", caFile, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	truststoreMu.Lock()
	defer truststoreMu.Unlock()
	// The library reads the prefix from a package variable; the option sets
	// it and ignores its argument. Set it before any Exists call.
	truststore.WithPrefix(cfg.Name)(nil)

	var results, failed []TrustResult
	for _, store := range stores {
		if err := ctx.Err(); err != nil {
			return results, fmt.Errorf("trust store: %w", err)
		}
		var r TrustResult
		switch store {
		case StoreSystem:
			r = trustSystem(caFile, cert, cfg.Name, install)
		case StoreNSS:
			r = trustNSS(caFile, cert, cfg.Name, install)
		case StoreJava:
			r = trustJava(caFile, cert, cfg.Name, install)
		}
		r.Store = store
		log.Info("trust store", "store", r.Store, "outcome", string(r.Outcome), "detail", r.Detail)
		results = append(results, r)
		if r.Outcome == TrustFailed {
			failed = append(failed, r)
		}
	}
	if len(failed) > 0 {
		return results, &TrustStoreError{Failed: failed}
	}
	return results, nil
}

func selectStores(names []string) ([]string, error) {
	if len(names) == 0 {
		return trustStores(), nil
	}
	want := map[string]bool{}
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		switch n {
		case StoreSystem, StoreNSS, StoreJava:
			want[n] = true
		default:
			return nil, fmt.Errorf("unknown trust store %q: want system, nss or java", n)
		}
	}
	var out []string
	for _, s := range trustStores() {
		if want[s] {
			out = append(out, s)
		}
	}
	return out, nil
}

func trustSystem(caFile string, cert *x509.Certificate, name string, install bool) TrustResult {
	path, supported := systemTrustFile(cert, name)
	if !supported {
		return TrustResult{Outcome: TrustSkipped, Detail: "no supported system trust store on " + runtime.GOOS}
	}
	if reason := needRoot(); reason != "" {
		return TrustResult{Outcome: TrustSkipped, Detail: reason}
	}
	_, statErr := os.Stat(path)
	present := statErr == nil
	// path is "" on platforms where the store is not a folder of files
	// (macOS keychain, Windows certificate store): always act there.
	if install {
		if path != "" && present {
			return TrustResult{Outcome: TrustAlreadyInstalled, Detail: path}
		}
		if err := retrySystem(func() error { return truststore.InstallFile(caFile, truststore.WithPrefix(name)) }); err != nil {
			return TrustResult{Outcome: TrustFailed, Detail: cmdDetail(err)}
		}
		return TrustResult{Outcome: TrustInstalled, Detail: orWhere(path)}
	}
	return untrustSystem(caFile, cert, name, path, present)
}

// untrustSystem removes the CA from the system store, then what
// update-ca-certificates leaves of it on Debian: stale links in
// /etc/ssl/certs and the copy its Java hook made (see javastore.go).
func untrustSystem(caFile string, cert *x509.Certificate, name, path string, present bool) TrustResult {
	var done []string
	if path == "" || present {
		if err := retrySystem(func() error { return truststore.UninstallFile(caFile, truststore.WithPrefix(name)) }); err != nil {
			return TrustResult{Outcome: TrustFailed, Detail: cmdDetail(err)}
		}
		done = append(done, orWhere(path))
	}
	if path == "" {
		return TrustResult{Outcome: TrustRemoved, Detail: strings.Join(done, "")}
	}
	entry := TrustEntryName(name, cert)
	if _, err := removeStaleSystemLinks(entry); err != nil {
		return TrustResult{Outcome: TrustFailed, Detail: butLeft(done, err)}
	}
	if _, err := os.Stat(debianJavaCacerts); err == nil {
		alias := debianJavaAlias(entry)
		removed, err := removeJavaAlias(debianJavaCacerts, alias)
		if err != nil {
			return TrustResult{Outcome: TrustFailed, Detail: butLeft(done, err)}
		}
		if removed {
			done = append(done, "Java alias "+alias+" from "+debianJavaCacerts)
		}
	}
	if len(done) == 0 {
		return TrustResult{Outcome: TrustNotInstalled, Detail: path}
	}
	return TrustResult{Outcome: TrustRemoved, Detail: strings.Join(done, " and ")}
}

// butLeft is the detail of a removal that went part of the way: what was
// removed, then what is left and why.
func butLeft(done []string, err error) string {
	if len(done) == 0 {
		return err.Error()
	}
	return "removed " + strings.Join(done, " and ") + ", but " + err.Error()
}

// retrySystem runs a system store change again when its command fails.
// update-ca-certificates lists the anchor folder and then reads each file;
// another process removing its own anchor in between makes it fail
// ("can't read ... No such file"), although nothing is wrong with ours.
// Both steps (write or remove our file, rebuild the bundle) are idempotent.
func retrySystem(op func() error) error {
	return retry.Do(context.Background(), retry.Backoff{Min: 200 * time.Millisecond, Max: 400 * time.Millisecond}, 3,
		func(err error) bool {
			var ce *truststore.CmdError
			return errors.As(err, &ce)
		}, op)
}

func orWhere(path string) string {
	if path == "" {
		return "system store"
	}
	return path
}

// needRoot explains why the system store cannot be changed, or returns "".
// Without root the library runs its commands through sudo, which may ask
// for a password; without sudo there is no way in.
func needRoot() string {
	if runtime.GOOS == "windows" || os.Geteuid() == 0 {
		return ""
	}
	if _, err := exec.LookPath("sudo"); err != nil {
		return "not root and sudo is not installed: run as root to change the system store"
	}
	return ""
}

func trustNSS(caFile string, cert *x509.Certificate, name string, install bool) TrustResult {
	nss, err := truststore.NewNSSTrust()
	if err != nil {
		return TrustResult{Outcome: TrustSkipped,
			Detail: "certutil not found (install libnss3-tools, or nss-tools)"}
	}
	created := ""
	if err := nss.PreCheck(); err != nil {
		if !install || runtime.GOOS != "linux" {
			return TrustResult{Outcome: TrustSkipped, Detail: "no Firefox profile or NSS database (~/.pki/nssdb) found"}
		}
		// Chromium on Linux reads ~/.pki/nssdb but creates it only when
		// it first needs to write there (a certificate imported in its
		// settings), so a fresh account has none and would not trust
		// the CA. Make it as Chromium does: an SQL database with an
		// empty password.
		db, err := createNSSDB()
		if err != nil {
			return TrustResult{Outcome: TrustFailed, Detail: err.Error()}
		}
		created = "created the NSS database " + db + " (Chromium's, as Chromium makes it: empty password); "
	}
	exists := nss.Exists(cert)
	entry := "NSS nickname " + TrustEntryName(name, cert)
	if install {
		if exists {
			return TrustResult{Outcome: TrustAlreadyInstalled, Detail: entry}
		}
		if err := nss.Install(caFile, cert); err != nil {
			return TrustResult{Outcome: TrustFailed, Detail: created + cmdDetail(err)}
		}
		return TrustResult{Outcome: TrustInstalled, Detail: created + entry}
	}
	if !exists {
		return TrustResult{Outcome: TrustNotInstalled, Detail: entry}
	}
	if err := nss.Uninstall(caFile, cert); err != nil {
		return TrustResult{Outcome: TrustFailed, Detail: cmdDetail(err)}
	}
	return TrustResult{Outcome: TrustRemoved, Detail: entry}
}

// createNSSDB makes the user's shared NSS database, ~/.pki/nssdb, with an
// empty password, and returns its folder.
func createNSSDB() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no NSS database, and none can be created: %w", err)
	}
	db := filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(db, 0o700); err != nil {
		return "", fmt.Errorf("create the NSS database: %w", err)
	}
	certutil, err := exec.LookPath("certutil")
	if err != nil {
		return "", fmt.Errorf("create the NSS database: %w", err)
	}
	cmd := exec.Command(certutil, "-N", "-d", "sql:"+db, "--empty-password")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("create the NSS database %s: %s: %s", db, err, strings.TrimSpace(string(out)))
	}
	return db, nil
}

func trustJava(caFile string, cert *x509.Certificate, name string, install bool) TrustResult {
	if !install {
		return untrustJava(caFile, cert, name)
	}
	java, skip := javaHomeTrust()
	if java == nil {
		return TrustResult{Outcome: TrustSkipped, Detail: skip}
	}
	exists := java.Exists(cert)
	entry := "Java alias " + TrustEntryName(name, cert)
	if exists {
		return TrustResult{Outcome: TrustAlreadyInstalled, Detail: entry}
	}
	if err := java.Install(caFile, cert); err != nil {
		return TrustResult{Outcome: TrustFailed, Detail: cmdDetail(err)}
	}
	return TrustResult{Outcome: TrustInstalled, Detail: entry}
}

// javaHomeTrust is the key store of the runtime at JAVA_HOME, or nil and why
// there is none.
func javaHomeTrust() (*truststore.JavaTrust, string) {
	if os.Getenv("JAVA_HOME") == "" {
		detail := "JAVA_HOME is not set"
		if home := guessJavaHome(); home != "" {
			detail += " (a Java runtime is at " + home + "; set JAVA_HOME to include its trust store)"
		}
		return nil, detail
	}
	java, err := truststore.NewJavaTrust()
	if err != nil {
		return nil, "no keytool in " + filepath.Join(os.Getenv("JAVA_HOME"), "bin") + " (JAVA_HOME does not point at a Java runtime)"
	}
	return java, ""
}

// untrustJava removes the CA from the key store at JAVA_HOME (where "ca
// install" puts it) and from Debian's system-wide key store (where
// update-ca-certificates' Java hook copied it), whether JAVA_HOME is set
// or not.
func untrustJava(caFile string, cert *x509.Certificate, name string) TrustResult {
	var done, looked []string
	java, skip := javaHomeTrust()
	if java != nil {
		entry := "Java alias " + TrustEntryName(name, cert)
		looked = append(looked, entry)
		if java.Exists(cert) {
			if err := java.Uninstall(caFile, cert); err != nil {
				return TrustResult{Outcome: TrustFailed, Detail: cmdDetail(err)}
			}
			done = append(done, entry)
		}
	}
	if _, err := os.Stat(debianJavaCacerts); err == nil {
		alias := debianJavaAlias(TrustEntryName(name, cert))
		looked = append(looked, "Java alias "+alias+" in "+debianJavaCacerts)
		removed, err := removeJavaAlias(debianJavaCacerts, alias)
		if err != nil {
			return TrustResult{Outcome: TrustFailed, Detail: butLeft(done, err)}
		}
		if removed {
			done = append(done, "Java alias "+alias+" from "+debianJavaCacerts)
		}
	}
	switch {
	case len(done) > 0:
		return TrustResult{Outcome: TrustRemoved, Detail: strings.Join(done, " and ")}
	case len(looked) == 0:
		return TrustResult{Outcome: TrustSkipped, Detail: skip}
	default:
		return TrustResult{Outcome: TrustNotInstalled, Detail: strings.Join(looked, " and ")}
	}
}

// guessJavaHome finds the runtime behind the java on PATH, to tell the user
// what JAVA_HOME to set. It never sets it: changing a Java trust store the
// user did not point at would be a surprise.
func guessJavaHome() string {
	p, err := exec.LookPath("java")
	if err != nil {
		return ""
	}
	if real, err := filepath.EvalSymlinks(p); err == nil {
		p = real
	}
	return filepath.Dir(filepath.Dir(p))
}

// cmdDetail keeps the output of a failed store command, which says more
// than its exit status.
func cmdDetail(err error) string {
	var ce *truststore.CmdError
	if errors.As(err, &ce) {
		if out := strings.TrimSpace(string(ce.Out())); out != "" {
			return err.Error() + ": " + out
		}
	}
	return err.Error()
}
