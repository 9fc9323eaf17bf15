// Package netaddr holds the small address checks that several layers make
// the same way, so that they answer alike: IsLoopback, used by the admin
// listener (a plain-HTTP admin.address must be loopback) and the cluster
// (routes without TLS must stay on this machine). Everything is in
// netaddr.go.
package netaddr
