package netaddr

import (
	"net"
	"strings"
)

// IsLoopback reports whether host (a name or an IP address, without a
// port) only reaches this machine: "localhost" in any case (DNS names are
// case-insensitive) or a loopback IP address. An empty host, which listens
// everywhere, is not.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsLoopbackAddr is IsLoopback for a HOST:PORT address; an address that
// does not split is not loopback.
func IsLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && IsLoopback(host)
}
