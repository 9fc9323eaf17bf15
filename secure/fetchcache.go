package secure

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Defaults of the server's revocation fetch cache.
const (
	fetchCacheTTL     = time.Minute
	fetchCacheEntries = 256
	fetchCacheMaxBody = 32 << 20
)

// fetchCache is an http.RoundTripper that remembers successful answers to
// identical requests (same method, URL and body) for a short time. A server
// judging client certificates would otherwise download the same CRL, or ask
// the same OCSP question, on every handshake. Revocation news is therefore
// seen up to fetchCacheTTL late on a listener; clients (Dial, check) do not
// cache. Only 200 answers are kept, so an outage is not remembered.
type fetchCache struct {
	next    http.RoundTripper
	ttl     time.Duration
	max     int
	now     func() time.Time
	mu      sync.Mutex
	entries map[[32]byte]fetchEntry
}

type fetchEntry struct {
	expires time.Time
	header  http.Header
	body    []byte
}

var _ http.RoundTripper = (*fetchCache)(nil)

func newFetchClient() *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &fetchCache{
			next: http.DefaultTransport, ttl: fetchCacheTTL, max: fetchCacheEntries,
			now: time.Now, entries: make(map[[32]byte]fetchEntry),
		},
	}
}

func (c *fetchCache) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", req.Method, req.URL)
	h.Write(body)
	var key [32]byte
	copy(key[:], h.Sum(nil))

	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return cachedResponse(req, e), nil
	}

	resp, err := c.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, fetchCacheMaxBody+1))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", req.URL, err)
	}
	e = fetchEntry{expires: now.Add(c.ttl), header: resp.Header.Clone(), body: data}
	if len(data) <= fetchCacheMaxBody {
		c.mu.Lock()
		if len(c.entries) >= c.max {
			c.evict(now)
		}
		c.entries[key] = e
		c.mu.Unlock()
	}
	return cachedResponse(req, e), nil
}

// evict drops expired entries, or everything when none has expired: a
// simple bound that never lets the map grow past max.
func (c *fetchCache) evict(now time.Time) {
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
}

func cachedResponse(req *http.Request, e fetchEntry) *http.Response {
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        e.header.Clone(),
		Body:          io.NopCloser(bytes.NewReader(e.body)),
		ContentLength: int64(len(e.body)),
		Request:       req,
	}
}
