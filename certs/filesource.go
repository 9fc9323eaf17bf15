package certs

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/passerelle/passerelle/certs/revocation"
)

// fileSource serves a certificate read from user-given PEM files and
// reloads it when the files change or on Manager.Reload. The current
// certificate sits behind an atomic pointer read by GetCertificate, so a
// reload needs no new tls.Config: new handshakes get the new certificate,
// connections already open keep theirs (ghostunnel's certloader does the
// same).
type fileSource struct {
	certFile, keyFile string
	log               *slog.Logger

	cur atomic.Pointer[tls.Certificate]

	mu                sync.Mutex // serialises reloads and guards the fields below
	lastCert, lastKey []byte
	ocspCancel        func()
	// failure is the last reload failure logged, "" after a success: a
	// failure is logged once per change (of the error or of the files),
	// not on every reload while the files stay broken (a busy folder
	// triggers one every FileDebounce).
	failure failedReload

	staple  func(*fileSource, *tls.Certificate) // OCSP stapling, run in the background after each load
	stapler atomic.Pointer[revocation.Stapler]  // the current certificate's, or nil (ocsp.go)
}

func (m *Manager) filesSource(spec TLSSpec) (*Source, error) {
	if spec.CertFile == "" || spec.KeyFile == "" {
		return nil, errors.New("tls.mode files needs tls.cert_file and tls.key_file")
	}
	certFile, err := filepath.Abs(spec.CertFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file: %w", err)
	}
	keyFile, err := filepath.Abs(spec.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.key_file: %w", err)
	}
	fs := &fileSource{
		certFile: certFile,
		keyFile:  keyFile,
		log:      m.log.With("cert_file", certFile),
		staple:   m.stapleFile,
	}
	certPEM, keyPEM, c, err := fs.read()
	if err != nil {
		return nil, err
	}
	fs.install(certPEM, keyPEM, c)
	if err := m.watch(fs); err != nil {
		if fs.ocspCancel != nil {
			fs.ocspCancel()
		}
		return nil, err
	}
	m.files = append(m.files, fs)
	var names []string
	names = append(names, c.Leaf.DNSNames...)
	for _, ip := range c.Leaf.IPAddresses {
		names = append(names, ip.String())
	}
	fs.log.Info("certificate ready", "mode", "files", "names", names, "not_after", c.Leaf.NotAfter, "serial", c.Leaf.SerialNumber.Text(16))
	return &Source{GetCertificate: fs.getCertificate, Mode: ModeFiles, Names: names}, nil
}

// failedReload is what a failed reload saw: its error and the files'
// contents.
type failedReload struct {
	err       string
	cert, key [sha256.Size]byte
}

func (fs *fileSource) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if s := fs.stapler.Load(); s != nil {
		return s.Certificate(fs.cur.Load()), nil
	}
	return fs.cur.Load(), nil
}

// read loads and checks both files. The errors name the setting and the
// file, since that is what the operator edits.
func (fs *fileSource) read() (certPEM, keyPEM []byte, c *tls.Certificate, err error) {
	certPEM, err = os.ReadFile(fs.certFile)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("tls.cert_file: %w", err)
	}
	keyPEM, err = os.ReadFile(fs.keyFile)
	if err != nil {
		return certPEM, nil, nil, fmt.Errorf("tls.key_file: %w", err)
	}
	chain, err := ParseCertsPEM(certPEM)
	if err != nil {
		return certPEM, keyPEM, nil, fmt.Errorf("tls.cert_file %s: %w", fs.certFile, err)
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return certPEM, keyPEM, nil, fmt.Errorf("tls.key_file %s: %w", fs.keyFile, err)
	}
	if !publicKeysEqual(chain[0].PublicKey, key.Public()) {
		return certPEM, keyPEM, nil, fmt.Errorf("tls.key_file %s does not match the certificate in tls.cert_file %s", fs.keyFile, fs.certFile)
	}
	c = &tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return certPEM, keyPEM, c, nil
}

// install makes c the served certificate. Callers hold fs.mu or own fs
// exclusively.
func (fs *fileSource) install(certPEM, keyPEM []byte, c *tls.Certificate) {
	fs.lastCert, fs.lastKey = certPEM, keyPEM
	fs.cur.Store(c)
	if now := time.Now(); now.After(c.Leaf.NotAfter) {
		fs.log.Warn("the certificate in tls.cert_file has expired", "not_after", c.Leaf.NotAfter)
	}
	if fs.ocspCancel != nil {
		fs.ocspCancel()
		fs.ocspCancel = nil
	}
	if fs.staple != nil {
		fs.staple(fs, c)
	}
}

// reload re-reads the files. Unchanged files are a no-op; bad files leave
// the previous certificate in place and the reason in the log, once until
// the error or the files change; the first good reload after a failure says
// so.
func (fs *fileSource) reload(trigger string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.log.Debug("checking certificate files", "trigger", trigger)
	certPEM, keyPEM, c, err := fs.read()
	if err != nil {
		f := failedReload{err: err.Error(), cert: sha256.Sum256(certPEM), key: sha256.Sum256(keyPEM)}
		if f != fs.failure {
			fs.failure = f
			fs.log.Warn("certificate files not reloaded; still serving the previous certificate", "trigger", trigger, "error", err.Error())
		}
		return err
	}
	recovered := fs.failure.err != ""
	fs.failure = failedReload{}
	if bytes.Equal(certPEM, fs.lastCert) && bytes.Equal(keyPEM, fs.lastKey) {
		if recovered {
			fs.log.Info("certificate files valid again; still serving the same certificate", "trigger", trigger)
		}
		return nil
	}
	old := fs.cur.Load()
	fs.install(certPEM, keyPEM, c)
	fs.log.Info("certificate reloaded", "trigger", trigger,
		"old_serial", old.Leaf.SerialNumber.Text(16), "serial", c.Leaf.SerialNumber.Text(16), "not_after", c.Leaf.NotAfter)
	return nil
}

// watch reloads fs when something changes in the folders of its files. It
// watches folders rather than files because tools replace files by rename
// (as WriteFileAtomic does) and Kubernetes swaps a symlink, and a watch on
// the old inode would miss both. A burst of events (certificate then key)
// is folded into one reload after m.cfg.FileDebounce of quiet.
func (m *Manager) watch(fs *fileSource) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch certificate files: %w", err)
	}
	dirs := map[string]bool{filepath.Dir(fs.certFile): true, filepath.Dir(fs.keyFile): true}
	for d := range dirs {
		if err := w.Add(d); err != nil {
			_ = w.Close()
			return fmt.Errorf("watch certificate files in %s: %w", d, err)
		}
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer w.Close()
		var (
			timer *time.Timer
			fire  <-chan time.Time
		)
		for {
			select {
			case <-m.ctx.Done():
				if timer != nil {
					timer.Stop()
				}
				fs.mu.Lock()
				if fs.ocspCancel != nil {
					fs.ocspCancel()
				}
				fs.mu.Unlock()
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Op == fsnotify.Chmod {
					continue
				}
				if timer == nil {
					timer = time.NewTimer(m.cfg.FileDebounce)
				} else {
					timer.Reset(m.cfg.FileDebounce)
				}
				fire = timer.C
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				fs.log.Warn("watching certificate files", "error", err.Error())
			case <-fire:
				fire = nil
				_ = fs.reload("file change")
			}
		}
	}()
	return nil
}
