package netaddr

import "testing"

func TestIsLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:9100", true},
		{"127.8.9.10:9100", true},
		{"[::1]:9100", true},
		{"localhost:9100", true},
		{"LocalHost:9100", true},
		{":9100", false},
		{"0.0.0.0:9100", false},
		{"[::]:9100", false},
		{"192.0.2.1:9100", false},
		{"localhost.example.org:9100", false},
		{"127.0.0.1", false}, // no port: not an address
	} {
		if got := IsLoopbackAddr(tc.addr); got != tc.want {
			t.Errorf("IsLoopbackAddr(%q) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}
