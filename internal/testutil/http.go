package testutil

import (
	"io"
	"net/http"
	"testing"
)

// HTTPGet fetches url and returns the status code and the body; a request
// or a body that fails fails the test.
func HTTPGet(tb testing.TB, url string) (int, string) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
