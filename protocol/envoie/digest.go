package envoie

import (
	"bufio"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// digestCacheEntries bounds the digest cache: one entry per name, about a
// hundred bytes plus the name (at most MaxName), so at most about 1 MiB.
const digestCacheEntries = 1024

// errClientGone: the client hung up while the server was working for it.
var errClientGone = errors.New("the client left")

// digester is a Server's digest machinery: the cache of digests already
// computed and the bound on digests computed at once. Hashing a large file
// costs seconds of CPU; without these, a few connections asking again and
// again would hold every core.
type digester struct {
	once  sync.Once
	sem   chan struct{} // one token per digest being computed
	cache digestCache

	// What the tests observe.
	runs    atomic.Int64      // hashing runs started
	hashed  atomic.Int64      // bytes hashed
	hashing atomic.Int64      // runs in progress
	waiting atomic.Int64      // requests waiting for a slot
	onChunk func(name string) // called after each chunk hashed; nil in production
}

func (s *Server) digester() *digester {
	s.dig.once.Do(func() {
		n := s.MaxDigests
		if n <= 0 {
			n = max(1, runtime.NumCPU()/2)
		}
		s.dig.sem = make(chan struct{}, n)
	})
	return &s.dig
}

func (s *Server) digestWait() time.Duration {
	if s.DigestWait <= 0 {
		return DefaultDigestWait
	}
	return s.DigestWait
}

// fileID is what tells one version of a file from another: its size and
// modification time everywhere, and on Linux its device, inode and change
// time too (sysIdentity).
type fileID struct {
	size, mtime int64
	dev, ino    uint64
	ctime       int64
}

func identify(st fs.FileInfo) fileID {
	id := fileID{size: st.Size(), mtime: st.ModTime().UnixNano()}
	sysIdentity(st, &id)
	return id
}

// digest answers EMPREINTE: a success response whose body is
// "sha256:<64 hex digits>". A file whose identity has not changed since its
// last digest is answered from the cache; otherwise the digest waits for a
// slot (at most MaxDigests at once), and stops when the client leaves.
func (s *Server) digest(ctx context.Context, conn net.Conn, br *bufio.Reader, req Request, log *slog.Logger) error {
	f, st, err := s.open(req.Name)
	if err != nil {
		return err
	}
	defer f.Close()
	d := s.digester()
	id := identify(st)
	sum, cached := d.cache.get(req.Name, id)
	if !cached {
		wctx, stop := watchClient(ctx, conn, br)
		sum, err = s.computeDigest(wctx, f, req.Name, id, log)
		stop()
		if err != nil {
			return err
		}
	}
	if err := s.writeBody(conn, []byte(sum)); err != nil {
		return fmt.Errorf("send digest of %s: %w", req.Name, err)
	}
	log.Debug("envoie: digest sent", "name", req.Name, "cached", cached)
	return nil
}

// computeDigest hashes f within the bound on concurrent digests, and caches
// the result while the file is still the one hashed.
func (s *Server) computeDigest(ctx context.Context, f fs.File, name string, id fileID, log *slog.Logger) (string, error) {
	d := s.digester()
	if err := s.acquireDigest(ctx, name, log); err != nil {
		return "", err
	}
	defer func() { <-d.sem }()
	// Another connection may have hashed the same file while this one
	// waited.
	if sum, ok := d.cache.get(name, id); ok {
		return sum, nil
	}
	d.runs.Add(1)
	d.hashing.Add(1)
	defer d.hashing.Add(-1)
	sum, err := s.hash(ctx, f, name, id.size)
	if err != nil {
		return "", err
	}
	// A file rewritten while it was read gives a digest of neither
	// version: answer it (the client asked at some point in between) but
	// do not keep it.
	if st, err := f.Stat(); err == nil && identify(st) == id {
		d.cache.put(name, id, sum)
	}
	return sum, nil
}

// acquireDigest takes a digest slot, waiting up to DigestWait for one.
func (s *Server) acquireDigest(ctx context.Context, name string, log *slog.Logger) error {
	d := s.digester()
	select {
	case d.sem <- struct{}{}:
		return nil
	default:
	}
	d.waiting.Add(1)
	defer d.waiting.Add(-1)
	s.logLimited(log, "envoie_digest_wait", "envoie: digest waits for a free slot", "name", name, "max_digests", cap(d.sem))
	t := time.NewTimer(s.digestWait())
	defer t.Stop()
	select {
	case d.sem <- struct{}{}:
		return nil
	case <-t.C:
		return refuse(CodeBusy, "the server is computing as many digests as it allows (%d); try again later", cap(d.sem))
	case <-ctx.Done():
		return fmt.Errorf("wait for a digest slot: %w", context.Cause(ctx))
	}
}

// hash reads exactly size bytes of f into SHA-256, through one pooled
// buffer, looking at ctx between chunks.
func (s *Server) hash(ctx context.Context, f io.Reader, name string, size int64) (string, error) {
	d := &s.dig
	bp := s.getBuf()
	defer s.bufs.Put(bp)
	buf := *bp
	h := sha256.New()
	var done int64
	for done < size {
		if ctx.Err() != nil {
			return "", fmt.Errorf("digest of %s stopped after %d of %d bytes: %w", name, done, size, context.Cause(ctx))
		}
		n, err := f.Read(buf[:min(int64(len(buf)), size-done)])
		h.Write(buf[:n])
		done += int64(n)
		d.hashed.Add(int64(n))
		if d.onChunk != nil {
			d.onChunk(name)
		}
		if errors.Is(err, io.EOF) && done < size {
			err = errShrank
		}
		if err != nil && done < size {
			return "", &refusal{code: CodeUnavailable, msg: fmt.Sprintf("%s cannot be read", quoteName(name)), err: err}
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// watchClient returns a context cancelled (cause errClientGone) when the
// client hangs up while the server, busy with a digest, is not reading. It
// reads ahead into br without consuming anything, so pipelined requests
// stay for the request loop; once br is full (a client that pipelined a
// whole buffer of requests) it stops watching. stop ends the watch; call it
// before using br or the connection's read side again.
func watchClient(ctx context.Context, conn net.Conn, br *bufio.Reader) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	// The request loop's deadline is for a request line; this read waits
	// as long as the digest does.
	_ = conn.SetReadDeadline(time.Time{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := br.Buffered(); n < br.Size(); n = br.Buffered() {
			if _, err := br.Peek(n + 1); err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					cancel(errClientGone)
				}
				return
			}
		}
	}()
	return ctx, func() {
		_ = conn.SetReadDeadline(time.Unix(1, 0)) // ends the Peek in progress
		<-done
		cancel(nil)
	}
}

// digestCache keeps the latest digest of each name with the identity of
// the file it was computed from, evicting the least recently used name
// beyond digestCacheEntries.
type digestCache struct {
	mu    sync.Mutex
	items map[string]*list.Element // of *digestEntry
	lru   list.List                // most recently used first
}

type digestEntry struct {
	name string
	id   fileID
	sum  string
}

func (c *digestCache) get(name string, id fileID) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[name]
	if !ok {
		return "", false
	}
	e := el.Value.(*digestEntry)
	if e.id != id {
		return "", false
	}
	c.lru.MoveToFront(el)
	return e.sum, true
}

func (c *digestCache) put(name string, id fileID, sum string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = make(map[string]*list.Element)
	}
	if el, ok := c.items[name]; ok {
		el.Value = &digestEntry{name: name, id: id, sum: sum}
		c.lru.MoveToFront(el)
		return
	}
	c.items[name] = c.lru.PushFront(&digestEntry{name: name, id: id, sum: sum})
	if c.lru.Len() > digestCacheEntries {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.items, last.Value.(*digestEntry).name)
	}
}
