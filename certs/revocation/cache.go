package revocation

import (
	"sync"
	"time"
)

// CacheConfig tunes a Cache.
type CacheConfig struct {
	// MaxAge bounds how long an answer is reused, even when its nextUpdate
	// is later, so that a revocation published before nextUpdate is seen
	// within MaxAge. Default 1h.
	MaxAge time.Duration
	// MaxEntries bounds the number of answers kept. Default 1000.
	MaxEntries int
}

// Cache keeps the OCSP responses and CRLs that Check fetched from the
// network, verified and current, so that checking the same certificates
// again asks no server until the answer's nextUpdate (or MaxAge) passes.
// Everything taken from the cache is verified again, with the time of the
// new check. Safe for concurrent use: share one per client configuration.
type Cache struct {
	cfg     CacheConfig
	mu      sync.Mutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	value   any // []byte for OCSP, []*x509.RevocationList for a CRL
	expires time.Time
}

// NewCache returns an empty cache.
func NewCache(cfg CacheConfig) *Cache {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = time.Hour
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 1000
	}
	return &Cache{cfg: cfg, entries: make(map[string]cacheEntry)}
}

// Len returns the number of answers held, expired ones included until they
// are evicted.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *Cache) get(key string, now time.Time) (any, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	if !now.Before(e.expires) {
		delete(c.entries, key)
		return nil, false
	}
	return e.value, true
}

// put keeps value until nextUpdate or MaxAge from now, whichever is sooner.
func (c *Cache) put(key string, value any, now, nextUpdate time.Time) {
	if c == nil {
		return
	}
	exp := now.Add(c.cfg.MaxAge)
	if !nextUpdate.IsZero() && nextUpdate.Before(exp) {
		exp = nextUpdate
	}
	if !now.Before(exp) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[key] = cacheEntry{value: value, expires: exp}
	if len(c.entries) <= c.cfg.MaxEntries {
		return
	}
	// Over budget: drop what has expired, then the answers that expire
	// soonest, until back under the limit.
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	for len(c.entries) > c.cfg.MaxEntries {
		var (
			victim string
			soon   time.Time
		)
		for k, e := range c.entries {
			if victim == "" || e.expires.Before(soon) {
				victim, soon = k, e.expires
			}
		}
		delete(c.entries, victim)
	}
}

// Forget drops every cached answer, for example after the user asked for a
// fresh check.
func (c *Cache) Forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
}
