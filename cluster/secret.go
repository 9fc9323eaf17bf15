package cluster

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SecretFileName is the cluster secret's file in the data folder when
// Config.SecretFile is not given (and the routes do not use TLS).
const SecretFileName = "cluster.secret"

// minSecretLen is the least length of a given secret, in bytes of its
// file (trimmed): 128 bits written in hex.
const minSecretLen = 32

// routeCredential is the route user and password every node of a cluster
// derives from the one secret they share: a node that lacks the secret
// cannot open a route, whatever else it knows (the cluster's name, a
// node's address). The secret itself never crosses the network; the name
// of the cluster is mixed in so that two clusters given the same secret by
// mistake still keep apart.
type routeCredential struct{ user, password string }

func deriveRouteCredential(secret []byte, cluster string) (routeCredential, error) {
	user, err := hkdf.Key(sha256.New, secret, nil, "passerelle cluster "+cluster+" route user", 8)
	if err != nil {
		return routeCredential{}, err
	}
	pass, err := hkdf.Key(sha256.New, secret, nil, "passerelle cluster "+cluster+" route password", 32)
	if err != nil {
		return routeCredential{}, err
	}
	return routeCredential{user: "route-" + hex.EncodeToString(user), password: base64.RawURLEncoding.EncodeToString(pass)}, nil
}

// loadOrCreateSecret reads the cluster secret at path, or makes it when
// there is none yet: 32 bytes from crypto/rand written in hex, readable by
// its owner only, so the first node makes it and the operator copies the
// file to the others. Two nodes of one machine starting at once pointing at
// one path read the same secret: the file appears whole (written aside, then
// linked into place) and only the first link wins.
func loadOrCreateSecret(path string) ([]byte, error) {
	b, err := readSecret(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return b, err
	}
	raw := make([]byte, 32)
	rand.Read(raw) // never fails (crypto/rand's documentation)
	val := []byte(hex.EncodeToString(raw) + "\n")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cluster.secret_file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cluster-secret-*")
	if err != nil {
		return nil, fmt.Errorf("cluster.secret_file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(val); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("cluster.secret_file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("cluster.secret_file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("cluster.secret_file: %w", err)
	}
	// CreateTemp makes the file 0600; Link fails if another node made
	// the secret meanwhile, whose secret is then the one.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("cluster.secret_file: %w", err)
	}
	return readSecret(path)
}

// readSecret reads a secret file and refuses one that others may read or
// that is too short to be a secret.
func readSecret(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cluster.secret_file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("cluster.secret_file: %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("cluster.secret_file: %s may be read by other users (mode %04o): chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster.secret_file: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < minSecretLen {
		return nil, fmt.Errorf("cluster.secret_file: %s holds %d bytes, under the %d of a secret (remove it and a node makes one)", path, len(b), minSecretLen)
	}
	return b, nil
}
