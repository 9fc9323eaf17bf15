package web

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/passerelle/passerelle/internal/testutil"
)

func TestOriginsAllowed(t *testing.T) {
	tests := []struct {
		list   []string
		origin string
		want   bool
	}{
		{nil, "https://anything.example", true},
		{nil, "", true},
		{[]string{"*"}, "null", true},
		{[]string{"*"}, "https://x.example:8443", true},
		{[]string{}, "", true},
		{[]string{}, "https://x.example", false},
		{[]string{"https://game.example"}, "https://game.example", true},
		{[]string{"https://game.example"}, "", true},
		{[]string{"https://game.example"}, "https://GAME.example", true},
		{[]string{"https://game.example"}, "https://game.example:443", true},
		{[]string{"https://game.example:443"}, "https://game.example", true},
		{[]string{"https://game.example"}, "http://game.example", false},
		{[]string{"https://game.example"}, "https://game.example:8443", false},
		{[]string{"https://game.example"}, "https://sub.game.example", false},
		{[]string{"https://game.example"}, "https://game.example.evil", false},
		{[]string{"https://game.example"}, "https://game.example/", true},
		{[]string{"https://game.example"}, "https://game.example/path", false},
		{[]string{"https://game.example"}, "null", false},
		{[]string{"https://game.example"}, "game.example", false},
		{[]string{"https://game.example"}, "https://user@game.example", false},
		{[]string{"http://localhost:8080"}, "http://localhost:8080", true},
		{[]string{"http://localhost:8080"}, "http://localhost", false},
		{[]string{"http://[::1]:8080"}, "http://[::1]:8080", true},
		{[]string{"http://[::1]"}, "http://[::1]:80", true},
		{[]string{"https://a.example", "https://b.example"}, "https://b.example", true},
		{[]string{"https://a.example", "*"}, "https://c.example", true},
	}
	for _, tc := range tests {
		o, err := NewOrigins(tc.list, nil)
		if err != nil {
			t.Fatalf("NewOrigins(%q): %v", tc.list, err)
		}
		if got := o.permits(tc.origin); got != tc.want {
			t.Errorf("origins %q: permits(%q) = %v, want %v", tc.list, tc.origin, got, tc.want)
		}
	}
}

func TestNewOriginsErrors(t *testing.T) {
	tests := []struct {
		list []string
		want string
	}{
		{[]string{"game.example"}, `origins[0]: "game.example" is not an origin; want scheme://host[:port] with scheme http or https, such as https://example.org`},
		{[]string{"*", "ftp://x.example"}, `origins[1]: "ftp://x.example" is not an origin; want scheme://host[:port] with scheme http or https, such as https://example.org`},
		{[]string{"https://"}, `origins[0]: "https://" is not an origin: no host; want scheme://host[:port], such as https://example.org`},
		{[]string{"https://x.example/app"}, `origins[0]: "https://x.example/app" is not an origin: only scheme://host[:port], without user, path, query or fragment`},
		{[]string{"https://x.example:port"}, `origins[0]: "https://x.example:port" is not an origin; want scheme://host[:port], such as https://example.org`},
		{[]string{"", "https://ok.example", "http://x?y"}, `origins[0]: "" is not an origin; want scheme://host[:port] with scheme http or https, such as https://example.org` + "\n" +
			`origins[2]: "http://x?y" is not an origin: only scheme://host[:port], without user, path, query or fragment`},
	}
	for _, tc := range tests {
		_, err := NewOrigins(tc.list, nil)
		if err == nil || err.Error() != tc.want {
			t.Errorf("NewOrigins(%q) error:\n got %v\nwant %s", tc.list, err, tc.want)
		}
	}
}

func TestOriginsCheck(t *testing.T) {
	logger, logs := testutil.Logger(t, slog.LevelInfo)
	o, err := NewOrigins([]string{"https://game.example"}, logger)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		origins []string
		want    bool
	}{
		{"none", nil, true},
		{"allowed", []string{"https://game.example"}, true},
		{"refused", []string{"https://evil.example"}, false},
		{"two", []string{"https://game.example", "https://game.example"}, false},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		for _, v := range tc.origins {
			r.Header.Add("Origin", v)
		}
		w := httptest.NewRecorder()
		if got := o.check(w, r); got != tc.want {
			t.Errorf("%s: Check = %v, want %v", tc.name, got, tc.want)
		}
		if tc.want {
			if w.Code != http.StatusOK || w.Body.Len() != 0 {
				t.Errorf("%s: allowed request answered %d %q", tc.name, w.Code, w.Body)
			}
			continue
		}
		if w.Code != http.StatusForbidden || w.Body.String() != forbiddenBody {
			t.Errorf("%s: got %d %q, want 403 %q", tc.name, w.Code, w.Body, forbiddenBody)
		}
	}
	// One line per interval (ratelog): the first refusal's; the second
	// is counted on the next line.
	if n := strings.Count(logs.String(), `msg="origin refused"`); n != 1 {
		t.Errorf("%d refusal lines, want 1:\n%s", n, logs)
	}
	if want := `origin=https://evil.example path=/ reason=origin_not_allowed`; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, logs)
	}
}
