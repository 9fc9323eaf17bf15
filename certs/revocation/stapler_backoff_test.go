package revocation

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
)

// roundTripFunc answers a client's requests in process.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestStaplerBacksOff: while the responder fails, the stapler retries after
// MinInterval, then twice as long each time, up to an hour. It runs in a
// synctest bubble, so the hours pass at once.
func TestStaplerBacksOff(t *testing.T) {
	ca := testpki.NewRoot(t, testpki.CAOptions{})
	leaf := ca.Leaf(t, testpki.LeafOptions{OCSPServer: []string{"http://ocsp.example/"}})
	synctest.Test(t, func(t *testing.T) {
		var fetches []time.Time
		down := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			fetches = append(fetches, time.Now())
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Body: http.NoBody, Request: r}, nil
		})}
		s, err := NewStapler(StaplerConfig{Leaf: leaf.Cert, Issuer: ca.Cert, Client: down, MinInterval: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		time.Sleep(5 * time.Hour)
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run returned %v after cancellation", err)
		}
		var gaps []string
		for i := 1; i < len(fetches) && i <= 9; i++ {
			gaps = append(gaps, fetches[i].Sub(fetches[i-1]).String())
		}
		want := []string{"1m0s", "2m0s", "4m0s", "8m0s", "16m0s", "32m0s", "1h0m0s", "1h0m0s", "1h0m0s"}
		if !slices.Equal(gaps, want) {
			t.Fatalf("waits between fetches %s, want %s", strings.Join(gaps, " "), strings.Join(want, " "))
		}
		if s.Staple() != nil {
			t.Fatal("a staple from a responder that never answered")
		}
	})
}
