// Command httpget downloads one HTTPS URL to nowhere with Go's net/http, for
// bench/envoie/run.sh: it lets nginx be measured with the same TLS client
// stack as passerelle get, beside curl.
//
//	httpget -ca ca.pem https://localhost:18443/big.bin
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/passerelle/passerelle/certs"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "httpget:", err)
		os.Exit(1)
	}
}

func run() error {
	caFile := flag.String("ca", "", "PEM file of the CA to trust")
	flag.Parse()
	if flag.NArg() != 1 || *caFile == "" {
		return errors.New("usage: httpget -ca FILE URL")
	}
	pool, err := certs.AddCAFile(nil, "-ca", *caFile)
	if err != nil {
		return err
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(flag.Arg(0))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", flag.Arg(0), resp.Status)
	}
	n, err := io.CopyBuffer(io.Discard, resp.Body, make([]byte, 64<<10))
	if err != nil {
		return err
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return fmt.Errorf("got %d of %d bytes", n, resp.ContentLength)
	}
	return nil
}
