package web_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/passerelle/passerelle/protocol/envoie"
	"github.com/passerelle/passerelle/web"
)

// The handlers of an asset listener and a chat listener, as an http.Server
// with the package's limits would serve them.
func Example() {
	origins, err := web.NewOrigins(web.DefaultOrigins(), nil)
	if err != nil {
		panic(err)
	}
	assets := &web.Assets{Files: envoie.Samples(), Origins: origins}
	page := web.NewChatPage()
	srv := &http.Server{Handler: assets}
	web.ApplyLimits(srv) // MaxHeaderBytes 8 KiB, ReadHeaderTimeout 10s

	for _, target := range []string{"/bienvenue.txt", "/blason.png", "/../etc/passwd", "/nothing.txt"} {
		r := httptest.NewRequest("GET", target, nil)
		r.Header.Set("Range", "bytes=0-3")
		w := httptest.NewRecorder()
		assets.ServeHTTP(w, r)
		body, _ := io.ReadAll(w.Result().Body)
		fmt.Printf("%s: %d %s %q\n", target, w.Code, w.Header().Get("Content-Type"), body)
	}
	w := httptest.NewRecorder()
	page.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	fmt.Println("/ on a chat listener:", w.Code, w.Header().Get("Content-Type"))
	// Output:
	// /bienvenue.txt: 206 text/plain; charset=utf-8 "Bien"
	// /blason.png: 206 image/png "\x89PNG"
	// /../etc/passwd: 404 text/plain; charset=utf-8 "404 not found\n"
	// /nothing.txt: 404 text/plain; charset=utf-8 "404 not found\n"
	// / on a chat listener: 200 text/html; charset=utf-8
}
