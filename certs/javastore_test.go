package certs

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf16"
)

// writeJKS writes a JKS key store of trusted certificates, as keytool
// does: version 2 entries, then the SHA-1 integrity digest over the password
// (UTF-16BE), the phrase "Mighty Aphrodite" and the content.
func writeJKS(t testing.TB, path, pass string, entries map[string]*x509.Certificate) {
	t.Helper()
	var b bytes.Buffer
	u32 := func(v uint32) { _ = binary.Write(&b, binary.BigEndian, v) }
	utf := func(s string) { _ = binary.Write(&b, binary.BigEndian, uint16(len(s))); b.WriteString(s) }
	u32(0xFEEDFEED)
	u32(2)
	u32(uint32(len(entries)))
	aliases := make([]string, 0, len(entries))
	for a := range entries {
		aliases = append(aliases, a)
	}
	sort.Strings(aliases)
	for _, a := range aliases {
		u32(2)
		utf(a)
		_ = binary.Write(&b, binary.BigEndian, uint64(1764460800000))
		utf("X.509")
		u32(uint32(len(entries[a].Raw)))
		b.Write(entries[a].Raw)
	}
	h := sha1.New()
	for _, r := range utf16.Encode([]rune(pass)) {
		h.Write([]byte{byte(r >> 8), byte(r)})
	}
	h.Write([]byte("Mighty Aphrodite"))
	h.Write(b.Bytes())
	b.Write(h.Sum(nil))
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestJKSAliases(t *testing.T) {
	dir := t.TempDir()
	ca, err := CreateCA(CADir(dir))
	if err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "cacerts")
	writeJKS(t, store, defaultStorePass, map[string]*x509.Certificate{
		"debian:b.pem": ca.Certificate(), "debian:a.pem": ca.Certificate()})
	good := readFile(t, store)
	got, err := jksAliases(good)
	if err != nil || !slices.Equal(got, []string{"debian:a.pem", "debian:b.pem"}) {
		t.Fatalf("aliases %q, %v", got, err)
	}
	// keytool reads what writeJKS writes (the digest included), so the
	// tests' key stores are real ones.
	if keytool := findKeytool(); keytool != "" {
		out := runCmd(t, keytool, "-list", "-keystore", store, "-storepass", defaultStorePass)
		if !strings.Contains(out, "debian:a.pem, ") || !strings.Contains(out, "debian:b.pem, ") {
			t.Fatalf("keytool -list:\n%s", out)
		}
	}

	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"PKCS#12", []byte{0x30, 0x82, 0x01, 0x00, 0, 0, 0, 0}, errNotJKS.Error()},
		{"empty", nil, errNotJKS.Error()},
		{"version 3", append([]byte{0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 3}, good[8:]...), "JKS version 3"},
		{"cut in an entry", good[:40], "truncated JKS key store"},
		{"huge count", []byte{0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2, 0, 1}, "truncated JKS key store"},
		{"secret key entry", append(append([]byte{}, good[:12]...), append([]byte{0, 0, 0, 3}, good[16:]...)...), "JKS entry 0: unknown tag 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := jksAliases(tt.data)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
	if _, err := jksAliases([]byte("0\x82..")); !errors.Is(err, errNotJKS) {
		t.Fatalf("PKCS#12 data: %v, want errNotJKS", err)
	}
}

func TestDebianJavaAlias(t *testing.T) {
	tests := []struct{ entry, want string }{
		{"passerelle-1a2b3c4d-1234", "debian:passerelle-1a2b3c4d-1234.pem"},
		{"My CA (test), 2", "debian:my_ca_=test=__2.pem"},
	}
	for _, tt := range tests {
		if got := debianJavaAlias(tt.entry); got != tt.want {
			t.Errorf("debianJavaAlias(%q) = %q, want %q", tt.entry, got, tt.want)
		}
	}
}
