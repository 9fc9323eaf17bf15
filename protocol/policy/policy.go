package policy

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Request is what a Flash client sends to ask for the socket policy file: the
// element and its terminating NUL (Adobe, "Setting up a socket policy file
// server": "<policy-file-request/>" followed by a NUL byte).
const Request = "<policy-file-request/>\x00"

// Default returns a cross-domain policy that lets content from any domain
// connect to the given ports (to-ports="*" when none are given). The
// site-control element stops Flash from looking for other policy files on
// this host ("master-only"), as Adobe recommends for socket policy servers.
// The result has no NUL: Response adds it.
func Default(ports ...int) []byte {
	to := "*"
	if len(ports) > 0 {
		s := make([]string, len(ports))
		for i, p := range ports {
			s[i] = strconv.Itoa(p)
		}
		to = strings.Join(s, ",")
	}
	return []byte(`<?xml version="1.0"?>
<!DOCTYPE cross-domain-policy SYSTEM "http://www.adobe.com/xml/dtds/cross-domain-policy.dtd">
<cross-domain-policy>
  <site-control permitted-cross-domain-policies="master-only"/>
  <allow-access-from domain="*" to-ports="` + to + `"/>
</cross-domain-policy>`)
}

// Response returns the bytes to send for a policy: doc followed by one NUL
// (a doc that already ends with a NUL is not given a second one).
func Response(doc []byte) []byte {
	doc = bytes.TrimRight(doc, "\x00")
	out := make([]byte, 0, len(doc)+1)
	out = append(out, doc...)
	return append(out, 0)
}

// Validate checks that doc can be served as a socket policy: well-formed XML
// whose root element is cross-domain-policy, without NUL bytes (the client
// would stop reading at the first one). Use it on a policy file an operator
// configures, so a mistake shows at start-up rather than as a silent Flash
// security error.
func Validate(doc []byte) error {
	if len(bytes.TrimSpace(doc)) == 0 {
		return errors.New("policy: the policy document is empty")
	}
	if i := bytes.IndexByte(bytes.TrimRight(doc, "\x00"), 0); i >= 0 {
		return fmt.Errorf("policy: NUL byte at offset %d (a Flash client stops reading there)", i)
	}
	dec := xml.NewDecoder(bytes.NewReader(bytes.TrimRight(doc, "\x00")))
	dec.Strict = true
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("policy: not well-formed XML: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
			if root != "cross-domain-policy" {
				return fmt.Errorf("policy: root element is <%s>, want <cross-domain-policy>", root)
			}
		}
	}
	if root == "" {
		return errors.New("policy: no <cross-domain-policy> element")
	}
	return nil
}
