package certs

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"strings"
)

// NameKind says which subjectAltName field a name goes into (RFC 5280
// section 4.2.1.6).
type NameKind string

// The kinds of subject alternative names.
const (
	NameDNS   NameKind = "dns"
	NameIP    NameKind = "ip"
	NameEmail NameKind = "email"
	NameURI   NameKind = "uri"
)

// InvalidNameError reports a name that cannot go into a certificate, with
// the reason. Callers show it as is: `invalid name "a b": ...`.
type InvalidNameError struct {
	Name   string
	Reason string
}

func (e *InvalidNameError) Error() string {
	return fmt.Sprintf("invalid name %q: %s", e.Name, e.Reason)
}

// Names is a set of names sorted into their subjectAltName fields.
type Names struct {
	DNS    []string
	IPs    []net.IP
	Emails []string
	URIs   []*url.URL
}

// Len is the number of names in the set.
func (n Names) Len() int { return len(n.DNS) + len(n.IPs) + len(n.Emails) + len(n.URIs) }

// ClassifyName decides what kind of name s is, the way mkcert does: an IP
// address, an e-mail address (it has an @), a URI (it has ://), otherwise a
// DNS name (wildcards allowed as the whole leftmost label; the last label
// not all digits, which would be a mistyped IPv4 address). It returns the
// name normalised (DNS names in lower case without a trailing dot) or an
// *InvalidNameError.
func ClassifyName(s string) (NameKind, string, error) {
	orig := s
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "", &InvalidNameError{Name: orig, Reason: "empty name"}
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		if a.Zone() != "" {
			return "", "", &InvalidNameError{Name: orig, Reason: "an IP address in a certificate cannot carry a zone"}
		}
		return NameIP, a.String(), nil
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", "", &InvalidNameError{Name: orig, Reason: "not a valid URI: " + unwrapURLError(err)}
		}
		if u.Scheme == "" || (u.Host == "" && u.Opaque == "" && u.Path == "") {
			return "", "", &InvalidNameError{Name: orig, Reason: "a URI needs a scheme and a host or path"}
		}
		return NameURI, u.String(), nil
	}
	if strings.Contains(s, "@") {
		a, err := mail.ParseAddress(s)
		if err != nil || a.Name != "" || a.Address != s {
			return "", "", &InvalidNameError{Name: orig, Reason: "not a valid e-mail address (want local@domain)"}
		}
		return NameEmail, s, nil
	}
	d, err := normaliseDNSName(s)
	if err != nil {
		return "", "", &InvalidNameError{Name: orig, Reason: err.Error()}
	}
	// A top-level label is never all digits (RFC 3696 section 2), and
	// resolvers and browsers read such a name as an IPv4 address in one of
	// its old forms (999.1.1.1, 1.2.3, 2130706433): it is a mistyped IP
	// address, not a host name.
	if last := d[strings.LastIndexByte(d, '.')+1:]; strings.Trim(last, "0123456789") == "" {
		return "", "", &InvalidNameError{Name: orig,
			Reason: "not a valid IP address, nor a valid DNS name (the last label of a DNS name cannot be all digits)"}
	}
	return NameDNS, d, nil
}

// parseNames classifies every name, dropping exact duplicates. The first
// invalid name stops it with an *InvalidNameError.
func parseNames(names []string) (Names, error) {
	var out Names
	seen := make(map[string]bool, len(names))
	for _, s := range names {
		kind, norm, err := ClassifyName(s)
		if err != nil {
			return Names{}, err
		}
		if seen[string(kind)+" "+norm] {
			continue
		}
		seen[string(kind)+" "+norm] = true
		switch kind {
		case NameDNS:
			out.DNS = append(out.DNS, norm)
		case NameIP:
			out.IPs = append(out.IPs, net.IP(netip.MustParseAddr(norm).AsSlice()))
		case NameEmail:
			out.Emails = append(out.Emails, norm)
		case NameURI:
			u, _ := url.Parse(norm) // parsed once already in ClassifyName
			out.URIs = append(out.URIs, u)
		}
	}
	return out, nil
}

// normaliseDNSName checks a host name against the preferred name syntax of
// RFC 1035 section 2.3.1 as relaxed by RFC 1123 (labels may start with a
// digit) and allows the underscore found in service names. A wildcard is only
// valid as the entire leftmost label of a name with at least two more labels
// (RFC 6125 section 6.4.3; "*.com" would cover a whole top-level domain).
func normaliseDNSName(s string) (string, error) {
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	if len(s) > 253 {
		return "", errors.New("DNS name longer than 253 characters")
	}
	labels := strings.Split(s, ".")
	for i, l := range labels {
		if l == "" {
			return "", errors.New("empty label in DNS name")
		}
		if l == "*" {
			if i != 0 {
				return "", errors.New("a wildcard is only allowed as the whole leftmost label (*.example.com)")
			}
			if len(labels) < 3 {
				return "", errors.New("a wildcard needs at least two labels after it (*.example.com)")
			}
			continue
		}
		if len(l) > 63 {
			return "", fmt.Errorf("DNS label %q longer than 63 characters", l)
		}
		for _, r := range l {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			case r == '-':
			case r == '*':
				return "", errors.New("a wildcard is only allowed as the whole leftmost label (*.example.com)")
			case r > 0x7f:
				return "", errors.New("non-ASCII DNS name: give its punycode form (xn--...)")
			default:
				return "", fmt.Errorf("character %q not allowed in a DNS name", r)
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("DNS label %q starts or ends with a hyphen", l)
		}
	}
	return s, nil
}

func unwrapURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
