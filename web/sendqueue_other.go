//go:build !linux

package web

import "net"

func sendQueue(*net.TCPConn) func() (int, bool) { return nil }
