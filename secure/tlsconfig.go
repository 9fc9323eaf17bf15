package secure

import "crypto/tls"

// cipherSuites are the TLS 1.2 suites offered and accepted: ECDHE key
// exchange (forward secrecy) with an AEAD cipher only, following RFC 7525
// section 4.2 and Mozilla's "intermediate" profile. TLS 1.3 suites are fixed by
// crypto/tls and all qualify.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// CipherSuites returns the TLS 1.2 cipher suites passerelle accepts (a copy).
func CipherSuites() []uint16 { return append([]uint16(nil), cipherSuites...) }

// MinVersion is the lowest TLS version passerelle speaks (RFC 8996 retired
// 1.0 and 1.1).
const MinVersion = tls.VersionTLS12

func baseConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   MinVersion,
		CipherSuites: CipherSuites(),
	}
}
