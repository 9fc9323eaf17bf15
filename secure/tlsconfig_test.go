package secure

import (
	"strings"
	"testing"
	"time"

	"github.com/passerelle/passerelle/internal/testpki"
	"github.com/passerelle/passerelle/internal/testutil"
)

// TestTLSPolicyWithOpenSSL offers the server old versions and non-AEAD
// suites with openssl s_client and checks what the server accepts.
func TestTLSPolicyWithOpenSSL(t *testing.T) {
	w := newWorld(t)
	tests := []struct {
		name   string
		args   []string
		output string // in openssl's output
		log    string // in the server's log, "" when accepted
	}{
		{"TLS 1.1 refused", []string{"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"}, "", "tls: client offered only unsupported versions: [302 301]"},
		{"CBC suite refused", []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"}, "", "tls: no cipher suite supported by both client and server"},
		{"non-forward-secret suite refused", []string{"-tls1_2", "-cipher", "AES128-GCM-SHA256"}, "", "tls: no cipher suite supported by both client and server"},
		{"TLS 1.2 ECDHE AES-GCM accepted", []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"}, "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256", ""},
		{"TLS 1.2 ChaCha20 accepted", []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"}, "Cipher is ECDHE-ECDSA-CHACHA20-POLY1305", ""},
		{"TLS 1.3 accepted", []string{"-tls1_3"}, "New, TLSv1.3, Cipher is TLS_", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := tlsServer(t, w.root.Leaf(t, testpki.LeafOptions{}))
			out := runOpenSSL(t, nil, append([]string{"s_client", "-connect", ts.addr, "-CAfile", w.rootFile}, tt.args...)...)
			if tt.output != "" {
				contains(t, out, tt.output)
			}
			if tt.log == "" {
				if strings.Contains(ts.logs.String(), "tls handshake failed") {
					t.Errorf("server refused:\n%s", ts.logs.String())
				}
				return
			}
			testutil.Eventually(t, "handshake failure log", 5*time.Second, func() bool { return strings.Contains(ts.logs.String(), "tls handshake failed") })
			contains(t, ts.logs.String(), tt.log)
		})
	}
}
