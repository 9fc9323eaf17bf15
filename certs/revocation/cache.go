package revocation

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of a Cache.
const (
	DefaultCacheMaxAge     = time.Hour
	DefaultCacheMaxEntries = 1000
	DefaultCacheMaxBytes   = 64 << 20
)

// CacheConfig tunes a Cache. The zero value takes the defaults.
type CacheConfig struct {
	// MaxAge bounds how long an answer is reused, even when its nextUpdate
	// is later, so that a revocation published before nextUpdate is seen
	// within MaxAge. Default DefaultCacheMaxAge.
	MaxAge time.Duration
	// MaxEntries bounds the number of answers kept. Default
	// DefaultCacheMaxEntries.
	MaxEntries int
	// MaxBytes bounds the size of the answers kept, counted as the bytes
	// that were downloaded. Default DefaultCacheMaxBytes.
	MaxBytes int64
}

// Cache keeps the OCSP responses and CRLs that Check fetched from the
// network, so that checking the same certificates again asks no server
// until the answer expires: at its nextUpdate, at the end of the HTTP
// max-age its server gave, or after MaxAge, whichever comes first. Only
// answers that verified and were current are kept; everything taken from
// the cache is verified again, with the time of the new check. A CRL is
// kept parsed, so a server that judges many clients parses it once.
//
// Checks that need the same answer at the same time share one request: the
// first one fetches, the others wait for it (or for their own context).
//
// Safe for concurrent use: share one per client or server configuration.
type Cache struct {
	cfg     CacheConfig
	mu      sync.Mutex
	entries map[string]cacheEntry
	bytes   int64
	flights map[string]*flight
}

type cacheEntry struct {
	value   any // []byte for OCSP, *x509.RevocationList for a CRL
	size    int64
	expires time.Time
}

// flight is one fetch that other checks may wait for.
type flight struct {
	done  chan struct{}
	value any
	err   error
	// abandoned: the fetching call's context ended, so err says nothing
	// about the source.
	abandoned bool
	waiters   int // calls waiting for it, for tests
}

// fetched is what a fetch function hands to the cache: the value, its size,
// and until when it may be kept (zero: not kept).
type fetched struct {
	value any
	size  int64
	keep  time.Time
}

// NewCache returns an empty cache.
func NewCache(cfg CacheConfig) *Cache {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultCacheMaxAge
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultCacheMaxEntries
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultCacheMaxBytes
	}
	return &Cache{cfg: cfg, entries: make(map[string]cacheEntry), flights: make(map[string]*flight)}
}

// get returns the value kept under key, fetching it when there is none.
// Concurrent calls for the same key wait for the one fetch in flight and
// share its value or its error, unless the fetching call's own context
// ended: then a waiter whose context is still live fetches in its turn. A
// waiter whose ctx ends first gets the error fetch would have returned
// (see ctxError). A nil Cache just fetches.
func (c *Cache) get(ctx context.Context, key string, now time.Time, fetch func() (fetched, error)) (any, error) {
	if c == nil {
		f, err := fetch()
		return f.value, err
	}
	for {
		c.mu.Lock()
		if e, ok := c.entries[key]; ok {
			if now.Before(e.expires) {
				c.mu.Unlock()
				return e.value, nil
			}
			c.drop(key)
		}
		fl, ok := c.flights[key]
		if !ok {
			break // with c.mu held: this call fetches
		}
		fl.waiters++
		c.mu.Unlock()
		select {
		case <-fl.done:
		case <-ctx.Done():
			return nil, ctxError(ctx)
		}
		if !fl.abandoned || ctx.Err() != nil {
			return fl.value, fl.err
		}
	}
	fl := &flight{done: make(chan struct{})}
	c.flights[key] = fl
	c.mu.Unlock()

	f, err := fetch()
	fl.value, fl.err, fl.abandoned = f.value, err, err != nil && ctx.Err() != nil

	c.mu.Lock()
	delete(c.flights, key)
	if err == nil {
		c.put(key, f, now)
	}
	c.mu.Unlock()
	close(fl.done)
	return f.value, err
}

// put keeps f until f.keep or MaxAge from now, whichever is sooner, then
// evicts until the cache is within its bounds. Callers hold c.mu.
func (c *Cache) put(key string, f fetched, now time.Time) {
	exp := now.Add(c.cfg.MaxAge)
	if f.keep.Before(exp) {
		exp = f.keep
	}
	if !now.Before(exp) || f.size > c.cfg.MaxBytes {
		return
	}
	c.drop(key)
	c.entries[key] = cacheEntry{value: f.value, size: f.size, expires: exp}
	c.bytes += f.size
	if len(c.entries) <= c.cfg.MaxEntries && c.bytes <= c.cfg.MaxBytes {
		return
	}
	// Over budget: drop what has expired, then the answers that expire
	// soonest, until back within both limits.
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			c.drop(k)
		}
	}
	for len(c.entries) > c.cfg.MaxEntries || c.bytes > c.cfg.MaxBytes {
		var (
			victim string
			soon   time.Time
		)
		for k, e := range c.entries {
			if victim == "" || e.expires.Before(soon) {
				victim, soon = k, e.expires
			}
		}
		c.drop(victim)
	}
}

// drop forgets key. Callers hold c.mu.
func (c *Cache) drop(key string) {
	if e, ok := c.entries[key]; ok {
		c.bytes -= e.size
		delete(c.entries, key)
	}
}

// keepUntil is how long an answer fetched at now may be kept: until its
// nextUpdate, shortened by the HTTP max-age its server sent (Cache-Control,
// RFC 9111 section 5.2.2.1). A missing nextUpdate keeps it for a day, as
// the checks accept it for that long (see outsideWindow). no-store and
// no-cache are not read: they speak to HTTP caches, and responders send
// them on every POST answer, whose freshness the OCSP response states
// itself.
func keepUntil(now, nextUpdate time.Time, header http.Header) time.Time {
	keep := nextUpdate
	if keep.IsZero() {
		keep = now.Add(24 * time.Hour)
	}
	if age, ok := maxAge(header); ok && now.Add(age).Before(keep) {
		keep = now.Add(age)
	}
	return keep
}

// maxAge reads the max-age directive of a Cache-Control header.
func maxAge(h http.Header) (time.Duration, bool) {
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			if !strings.EqualFold(name, "max-age") {
				continue
			}
			secs, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
			if err != nil || secs < 0 {
				return 0, false
			}
			return time.Duration(min(secs, int64(365*24*time.Hour/time.Second))) * time.Second, true
		}
	}
	return 0, false
}
