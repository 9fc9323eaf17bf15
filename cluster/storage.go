package cluster

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/passerelle/passerelle/internal/retry"
)

// lockTTL is how long a certificate lock outlives a node that died holding
// it; a live holder rewrites it every lockTTL/4.
const lockTTL = 60 * time.Second

// CertStorage is certmagic's storage and locks on the cluster's NATS, so
// that one node obtains a certificate and every node serves it, and two
// nodes never order the same name at once. Certificates, keys and ACME
// accounts are in the bucket "passerelle_NAME_certs" (file storage, kept
// across restarts), locks in "passerelle_NAME_locks" (a lock left by a
// dead node goes after a minute). Every call waits, within its context,
// for JetStream to be ready.
type CertStorage struct {
	n *Node

	mu    sync.Mutex
	data  jetstream.KeyValue
	locks jetstream.KeyValue
	held  map[string]*heldLock
}

type heldLock struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	rev  uint64
}

var _ certmagic.Storage = (*CertStorage)(nil)

// CertStorage returns the node's certmagic storage.
func (n *Node) CertStorage() *CertStorage {
	return &CertStorage{n: n, held: make(map[string]*heldLock)}
}

// buckets binds (or creates) the two buckets, retrying until ctx ends.
func (s *CertStorage) buckets(ctx context.Context) (jetstream.KeyValue, jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data != nil {
		return s.data, s.locks, nil
	}
	js, err := jetstream.New(s.n.nc)
	if err != nil {
		return nil, nil, err
	}
	replicas := []int{3, 1}
	if s.n.cfg.Embedded {
		replicas = []int{min(3, len(s.n.cfg.Routes)+1)}
	}
	create := func(cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
		var kv jetstream.KeyValue
		last := retry.Do(ctx, retry.Backoff{Min: 250 * time.Millisecond, Max: 250 * time.Millisecond}, 0, nil, func() (err error) {
			for _, r := range replicas {
				cfg.Replicas = r
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				kv, err = js.CreateOrUpdateKeyValue(cctx, cfg)
				cancel()
				if err == nil {
					return nil
				}
			}
			return err
		})
		if last != nil {
			return nil, fmt.Errorf("cluster: certificate storage not ready: %w (last: %v)", ctx.Err(), last)
		}
		return kv, nil
	}
	data, err := create(jetstream.KeyValueConfig{
		Bucket:      "passerelle_" + s.n.cfg.Name + "_certs",
		Description: "passerelle: certmagic storage (certificates, keys, ACME accounts)",
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, nil, err
	}
	locks, err := create(jetstream.KeyValueConfig{
		Bucket:      "passerelle_" + s.n.cfg.Name + "_locks",
		Description: "passerelle: certmagic locks",
		History:     1,
		TTL:         lockTTL,
		Storage:     jetstream.MemoryStorage,
	})
	if err != nil {
		return nil, nil, err
	}
	s.data, s.locks = data, locks
	return data, locks, nil
}

// Keys are certmagic's paths ("certificates/ISSUER/NAME/NAME.crt"), which
// may hold characters a bucket key may not ('@' in account e-mails):
// base64url of the whole path.
func storageKey(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

func fromStorageKey(k string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(k)
	return string(b), err == nil
}

// Store implements certmagic.Storage.
func (s *CertStorage) Store(ctx context.Context, key string, value []byte) error {
	data, _, err := s.buckets(ctx)
	if err != nil {
		return err
	}
	if _, err := data.Put(ctx, storageKey(key), value); err != nil {
		return fmt.Errorf("cluster: store %s: %w", key, err)
	}
	return nil
}

// Load implements certmagic.Storage; a missing key is fs.ErrNotExist.
func (s *CertStorage) Load(ctx context.Context, key string) ([]byte, error) {
	data, _, err := s.buckets(ctx)
	if err != nil {
		return nil, err
	}
	e, err := data.Get(ctx, storageKey(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("cluster: load %s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: load %s: %w", key, err)
	}
	return e.Value(), nil
}

// all returns every stored path.
func (s *CertStorage) all(ctx context.Context, data jetstream.KeyValue) ([]string, error) {
	keys, err := data.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(keys))
	for _, k := range keys {
		if p, ok := fromStorageKey(k); ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	return paths, nil
}

// under reports whether path is prefix itself or below it.
func under(path, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	return prefix == "" || path == prefix || strings.HasPrefix(path, prefix+"/")
}

// Delete implements certmagic.Storage: the key, or everything below it.
func (s *CertStorage) Delete(ctx context.Context, key string) error {
	data, _, err := s.buckets(ctx)
	if err != nil {
		return err
	}
	paths, err := s.all(ctx, data)
	if err != nil {
		return fmt.Errorf("cluster: delete %s: %w", key, err)
	}
	for _, p := range paths {
		if under(p, key) {
			if err := data.Purge(ctx, storageKey(p)); err != nil {
				return fmt.Errorf("cluster: delete %s: %w", p, err)
			}
		}
	}
	return nil
}

// Exists implements certmagic.Storage.
func (s *CertStorage) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
}

// List implements certmagic.Storage.
func (s *CertStorage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	data, _, err := s.buckets(ctx)
	if err != nil {
		return nil, err
	}
	paths, err := s.all(ctx, data)
	if err != nil {
		return nil, fmt.Errorf("cluster: list %s: %w", path, err)
	}
	prefix := strings.TrimSuffix(path, "/")
	seen := map[string]bool{}
	var out []string
	for _, p := range paths {
		if p == prefix || !under(p, prefix) {
			continue
		}
		if !recursive {
			rest := strings.TrimPrefix(p, prefix)
			rest = strings.TrimPrefix(rest, "/")
			child, _, _ := strings.Cut(rest, "/")
			if prefix != "" {
				child = prefix + "/" + child
			}
			p = child
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("cluster: list %s: %w", path, fs.ErrNotExist)
	}
	return out, nil
}

// Stat implements certmagic.Storage.
func (s *CertStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	data, _, err := s.buckets(ctx)
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	e, err := data.Get(ctx, storageKey(key))
	if err == nil {
		return certmagic.KeyInfo{Key: key, Modified: e.Created(), Size: int64(len(e.Value())), IsTerminal: true}, nil
	}
	if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return certmagic.KeyInfo{}, fmt.Errorf("cluster: stat %s: %w", key, err)
	}
	paths, err := s.all(ctx, data)
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("cluster: stat %s: %w", key, err)
	}
	for _, p := range paths {
		if p != key && under(p, key) {
			return certmagic.KeyInfo{Key: key, IsTerminal: false}, nil
		}
	}
	return certmagic.KeyInfo{}, fmt.Errorf("cluster: stat %s: %w", key, fs.ErrNotExist)
}

// Lock implements certmagic.Locker: it waits until no node holds name,
// then holds it, rewriting it while held so that it does not expire.
func (s *CertStorage) Lock(ctx context.Context, name string) error {
	_, locks, err := s.buckets(ctx)
	if err != nil {
		return err
	}
	key := storageKey(name)
	val := []byte(s.n.id)
	var rev uint64
	err = retry.Do(ctx, retry.Backoff{Min: 250 * time.Millisecond, Max: 250 * time.Millisecond}, 0,
		func(err error) bool { return errors.Is(err, jetstream.ErrKeyExists) }, // held by another: wait for it
		func() (err error) {
			rev, err = locks.Create(ctx, key, val)
			return err
		})
	switch {
	case err == nil:
		s.hold(locks, name, key, val, rev)
		return nil
	case errors.Is(err, jetstream.ErrKeyExists):
		return fmt.Errorf("cluster: lock %s: %w", name, ctx.Err())
	}
	return fmt.Errorf("cluster: lock %s: %w", name, err)
}

func (s *CertStorage) hold(locks jetstream.KeyValue, name, key string, val []byte, rev uint64) {
	l := &heldLock{stop: make(chan struct{}), done: make(chan struct{}), rev: rev}
	s.mu.Lock()
	s.held[name] = l
	s.mu.Unlock()
	go func() {
		defer close(l.done)
		t := time.NewTicker(lockTTL / 4)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			l.mu.Lock()
			if r, err := locks.Update(ctx, key, val, l.rev); err == nil {
				l.rev = r
			} else {
				s.n.log.Warn("cluster certificate lock not renewed", "lock", name, "error", err.Error())
			}
			l.mu.Unlock()
			cancel()
		}
	}()
}

// Unlock implements certmagic.Locker.
func (s *CertStorage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	l := s.held[name]
	delete(s.held, name)
	locks := s.locks
	s.mu.Unlock()
	if l == nil || locks == nil {
		return fmt.Errorf("cluster: unlock %s: not held here", name)
	}
	close(l.stop)
	<-l.done
	if err := locks.Delete(ctx, storageKey(name), jetstream.LastRevision(l.rev)); err != nil {
		return fmt.Errorf("cluster: unlock %s: %w", name, err)
	}
	return nil
}

// String names the storage in certmagic's logs.
func (s *CertStorage) String() string { return "NATS bucket passerelle_" + s.n.cfg.Name + "_certs" }
