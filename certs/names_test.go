package certs

import "testing"

func TestClassifyName(t *testing.T) {
	tests := []struct {
		in       string
		wantKind NameKind
		wantNorm string
	}{
		{"localhost", NameDNS, "localhost"},
		{"Chat.Example.TEST.", NameDNS, "chat.example.test"},
		{"*.example.test", NameDNS, "*.example.test"},
		{"_xmpp.example.test", NameDNS, "_xmpp.example.test"},
		{"xn--caf-dma.test", NameDNS, "xn--caf-dma.test"},
		{"127.0.0.1", NameIP, "127.0.0.1"},
		{"::1", NameIP, "::1"},
		{"[2001:db8::1]", NameIP, "2001:db8::1"},
		{"alice@example.test", NameEmail, "alice@example.test"},
		{"spiffe://example.test/alice", NameURI, "spiffe://example.test/alice"},
		{" padded.test ", NameDNS, "padded.test"},
		{"1.2.3.4.example", NameDNS, "1.2.3.4.example"}, // digits are fine before the last label
		{"host-1.lan2", NameDNS, "host-1.lan2"},
	}
	for _, tt := range tests {
		kind, norm, err := ClassifyName(tt.in)
		if err != nil || kind != tt.wantKind || norm != tt.wantNorm {
			t.Errorf("ClassifyName(%q) = %s, %q, %v; want %s, %q", tt.in, kind, norm, err, tt.wantKind, tt.wantNorm)
		}
	}
}

func TestParseKeyType(t *testing.T) {
	for _, kt := range KeyTypes() {
		got, err := ParseKeyType(" " + string(kt) + " ")
		if err != nil || got != kt {
			t.Errorf("ParseKeyType(%q) = %q, %v", kt, got, err)
		}
	}
	if got, err := ParseKeyType(""); err != nil || got != KeyECDSAP256 {
		t.Errorf("ParseKeyType(\"\") = %q, %v", got, err)
	}
	_, err := ParseKeyType("RSA-1024")
	want := `unknown key type "rsa-1024": want one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096, ed25519`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

func TestParseKeyPEMForms(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ name, alg string }{
		{"PKCS#1 RSA", "rsa"},
		{"SEC 1 EC", "ec"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := dir + "/" + tt.alg + ".pem"
			switch tt.alg {
			case "rsa":
				runCmd(t, "openssl", "genrsa", "-traditional", "-out", p, "2048")
			case "ec":
				runCmd(t, "openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", p)
			}
			k, err := ParseKeyPEM(readFile(t, p))
			if err != nil || k == nil {
				t.Fatalf("ParseKeyPEM: %v", err)
			}
		})
	}
	enc := dir + "/enc.pem"
	runCmd(t, "openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes256", "-pass", "pass:x", "-out", enc)
	_, err := ParseKeyPEM(readFile(t, enc))
	want := "encrypted private keys are not supported: decrypt it first (openssl pkey -in key.pem -out plain.pem)"
	if err == nil || err.Error() != want {
		t.Errorf("encrypted key: error = %v, want %q", err, want)
	}
}
