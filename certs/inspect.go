package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"time"

	"github.com/passerelle/passerelle/internal/termsafe"
)

// CertInfo is the readable summary of one certificate that
// "passerelle cert inspect" prints, as text or JSON. The JSON field names are
// an interface for scripts: keep them stable.
type CertInfo struct {
	Subject    string `json:"subject"`
	Issuer     string `json:"issuer"`
	SelfSigned bool   `json:"self_signed"`
	CommonName string `json:"common_name,omitempty"`
	// DNSNames, IPAddresses, EmailAddresses and URIs are the subject
	// alternative names.
	DNSNames       []string `json:"dns_names,omitempty"`
	IPAddresses    []string `json:"ip_addresses,omitempty"`
	EmailAddresses []string `json:"email_addresses,omitempty"`
	URIs           []string `json:"uris,omitempty"`

	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// Validity is "valid", "expired" or "not yet valid" at the time of
	// inspection.
	Validity string `json:"validity"`
	// DaysLeft is the whole days until NotAfter, negative once expired.
	DaysLeft int `json:"days_left"`

	KeyType            string `json:"key_type"` // "ECDSA P-256", "RSA", "Ed25519"
	KeyBits            int    `json:"key_bits"`
	SignatureAlgorithm string `json:"signature_algorithm"`
	// Serial is the serial number in colon-separated hex, as openssl prints it.
	Serial string `json:"serial"`
	// SHA256Fingerprint is the SHA-256 of the DER certificate, colon-separated
	// upper-case hex (the form browsers and openssl -fingerprint show).
	SHA256Fingerprint string `json:"sha256_fingerprint"`
	// SPKIPin is the base64 SHA-256 of the SubjectPublicKeyInfo (RFC 7469),
	// the value mutual-TLS allow-lists take in spki_pins.
	SPKIPin string `json:"spki_pin"`

	KeyUsage    []string `json:"key_usage,omitempty"`
	ExtKeyUsage []string `json:"ext_key_usage,omitempty"`
	IsCA        bool     `json:"is_ca"`
	// MaxPathLen is the path length constraint of a CA, nil when there is none.
	MaxPathLen *int `json:"max_path_len,omitempty"`

	OCSPServers           []string `json:"ocsp_servers,omitempty"`
	IssuingCertificateURL []string `json:"issuing_certificate_urls,omitempty"`
	CRLDistributionPoints []string `json:"crl_distribution_points,omitempty"`
}

// Validity words of CertInfo.Validity.
const (
	ValidityValid       = "valid"
	ValidityExpired     = "expired"
	ValidityNotYetValid = "not yet valid"
)

// Describe summarises c as seen at now.
func Describe(c *x509.Certificate, now time.Time) CertInfo {
	info := CertInfo{
		Subject:               c.Subject.String(),
		Issuer:                c.Issuer.String(),
		SelfSigned:            isSelfSigned(c),
		CommonName:            c.Subject.CommonName,
		DNSNames:              c.DNSNames,
		EmailAddresses:        c.EmailAddresses,
		NotBefore:             c.NotBefore.UTC(),
		NotAfter:              c.NotAfter.UTC(),
		SignatureAlgorithm:    c.SignatureAlgorithm.String(),
		Serial:                colonHex(c.SerialNumber.Bytes(), false),
		SHA256Fingerprint:     Fingerprint(c),
		SPKIPin:               SPKIPin(c),
		KeyUsage:              keyUsageNames(c.KeyUsage),
		ExtKeyUsage:           extKeyUsageNames(c),
		IsCA:                  c.BasicConstraintsValid && c.IsCA,
		OCSPServers:           c.OCSPServer,
		IssuingCertificateURL: c.IssuingCertificateURL,
		CRLDistributionPoints: c.CRLDistributionPoints,
	}
	for _, ip := range c.IPAddresses {
		info.IPAddresses = append(info.IPAddresses, ip.String())
	}
	for _, u := range c.URIs {
		info.URIs = append(info.URIs, u.String())
	}
	info.KeyType, info.KeyBits = describeKey(c.PublicKey)
	if info.IsCA && (c.MaxPathLen > 0 || c.MaxPathLenZero) {
		n := c.MaxPathLen
		info.MaxPathLen = &n
	}
	switch {
	case now.Before(c.NotBefore):
		info.Validity = ValidityNotYetValid
	case now.After(c.NotAfter):
		info.Validity = ValidityExpired
	default:
		info.Validity = ValidityValid
	}
	info.DaysLeft = int(math.Floor(c.NotAfter.Sub(now).Hours() / 24))
	return info
}

// isSelfSigned reports whether c is signed by its own key (a root).
func isSelfSigned(c *x509.Certificate) bool {
	// CheckSignatureFrom would refuse a self-signed leaf (not a CA); check
	// the signature against the certificate's own key directly.
	return bytes.Equal(c.RawSubject, c.RawIssuer) &&
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// Fingerprint is the SHA-256 of the DER certificate in colon-separated
// upper-case hex.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return colonHex(sum[:], true)
}

// SPKIPin is the base64 (standard, padded) SHA-256 of the certificate's DER
// SubjectPublicKeyInfo, as defined for public key pinning by RFC 7469
// section 2.4 and used by mutual-TLS allow-lists.
func SPKIPin(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func colonHex(b []byte, upper bool) string {
	if len(b) == 0 {
		return "00"
	}
	h := hex.EncodeToString(b)
	if upper {
		h = strings.ToUpper(h)
	}
	var sb strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}

func describeKey(pub any) (string, int) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name, k.Curve.Params().BitSize
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case ed25519.PublicKey:
		return "Ed25519", 256
	default:
		return fmt.Sprintf("%T", pub), 0
	}
}

// keyUsageNames spells the key usage bits as RFC 5280 section 4.2.1.3 names
// them, which is also how openssl prints them (minus the spaces).
func keyUsageNames(ku x509.KeyUsage) []string {
	names := []struct {
		bit  x509.KeyUsage
		name string
	}{
		{x509.KeyUsageDigitalSignature, "digitalSignature"},
		{x509.KeyUsageContentCommitment, "contentCommitment"},
		{x509.KeyUsageKeyEncipherment, "keyEncipherment"},
		{x509.KeyUsageDataEncipherment, "dataEncipherment"},
		{x509.KeyUsageKeyAgreement, "keyAgreement"},
		{x509.KeyUsageCertSign, "keyCertSign"},
		{x509.KeyUsageCRLSign, "cRLSign"},
		{x509.KeyUsageEncipherOnly, "encipherOnly"},
		{x509.KeyUsageDecipherOnly, "decipherOnly"},
	}
	var out []string
	for _, n := range names {
		if ku&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

func extKeyUsageNames(c *x509.Certificate) []string {
	names := map[x509.ExtKeyUsage]string{
		x509.ExtKeyUsageAny:             "any",
		x509.ExtKeyUsageServerAuth:      "serverAuth",
		x509.ExtKeyUsageClientAuth:      "clientAuth",
		x509.ExtKeyUsageCodeSigning:     "codeSigning",
		x509.ExtKeyUsageEmailProtection: "emailProtection",
		x509.ExtKeyUsageTimeStamping:    "timeStamping",
		x509.ExtKeyUsageOCSPSigning:     "OCSPSigning",
	}
	var out []string
	for _, u := range c.ExtKeyUsage {
		if n, ok := names[u]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("extKeyUsage(%d)", u))
		}
	}
	for _, oid := range c.UnknownExtKeyUsage {
		out = append(out, oid.String())
	}
	return out
}

// WriteText prints the summary as aligned "Label: value" lines, each
// indented by indent. The values are escaped for a terminal (see
// internal/termsafe): names, subjects and URLs are whatever the
// certificate's author wrote, control characters included.
func (i CertInfo) WriteText(w io.Writer, indent string) error {
	var names []string
	for _, n := range i.DNSNames {
		names = append(names, "DNS:"+n)
	}
	for _, n := range i.IPAddresses {
		names = append(names, "IP:"+n)
	}
	for _, n := range i.EmailAddresses {
		names = append(names, "email:"+n)
	}
	for _, n := range i.URIs {
		names = append(names, "URI:"+n)
	}
	until := i.NotAfter.Format(time.RFC3339)
	switch i.Validity {
	case ValidityExpired:
		until += fmt.Sprintf(" (EXPIRED %s ago)", plural(-i.DaysLeft, "day"))
	case ValidityNotYetValid:
		until += " (NOT YET VALID)"
	default:
		until += fmt.Sprintf(" (%s left)", plural(i.DaysLeft, "day"))
	}
	ca := "no"
	if i.IsCA {
		ca = "yes"
		if i.MaxPathLen != nil {
			ca += fmt.Sprintf(" (max path length %d)", *i.MaxPathLen)
		}
	}
	subject := i.Subject
	if i.SelfSigned {
		subject += " (self-signed)"
	}
	key := i.KeyType
	if i.KeyBits > 0 {
		key += fmt.Sprintf(" (%d bits)", i.KeyBits)
	}
	rows := [][2]string{
		{"Subject", subject},
		{"Issuer", i.Issuer},
		{"Names", orNone(strings.Join(names, ", "))},
		{"Valid from", i.NotBefore.Format(time.RFC3339)},
		{"Valid until", until},
		{"Key", key},
		{"Signature", i.SignatureAlgorithm},
		{"Serial", i.Serial},
		{"SHA-256", i.SHA256Fingerprint},
		{"SPKI pin", i.SPKIPin},
		{"Key usage", orNone(strings.Join(i.KeyUsage, ", "))},
		{"Ext. key usage", orNone(strings.Join(i.ExtKeyUsage, ", "))},
		{"CA", ca},
	}
	if len(i.OCSPServers) > 0 {
		rows = append(rows, [2]string{"OCSP", strings.Join(i.OCSPServers, ", ")})
	}
	if len(i.CRLDistributionPoints) > 0 {
		rows = append(rows, [2]string{"CRL", strings.Join(i.CRLDistributionPoints, ", ")})
	}
	if len(i.IssuingCertificateURL) > 0 {
		rows = append(rows, [2]string{"CA issuers", strings.Join(i.IssuingCertificateURL, ", ")})
	}
	for _, r := range rows {
		if _, err := fmt.Fprintf(w, "%s%-15s %s\n", indent, r[0]+":", termsafe.Escape(r[1])); err != nil {
			return err
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// LiveChain is what a TLS server presented, read by FetchChain.
type LiveChain struct {
	Address     string `json:"address"`
	ServerName  string `json:"server_name"`
	TLSVersion  string `json:"tls_version"`
	CipherSuite string `json:"cipher_suite"`
	ALPN        string `json:"alpn,omitempty"`
	// Certificates are as the server sent them, leaf first.
	Certificates []*x509.Certificate `json:"-"`
}

// FetchChain connects to addr (host:port) and returns the certificates the
// server presents for serverName (default: the host part of addr when it is
// a name, nothing for an IP address). It verifies nothing: it only reads the
// chain, which is why InsecureSkipVerify is set; use the check command to
// judge a server. The handshake is bounded by ctx.
func FetchChain(ctx context.Context, addr, serverName string) (*LiveChain, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: want HOST:PORT: %w", addr, err)
	}
	if serverName == "" && net.ParseIP(host) == nil {
		serverName = host
	}
	d := &tls.Dialer{Config: &tls.Config{
		ServerName: serverName,
		// Reading the chain is the whole point, whatever its defects.
		InsecureSkipVerify: true, //nolint:gosec // inspection only, nothing is trusted
	}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	st := conn.(*tls.Conn).ConnectionState()
	return &LiveChain{
		Address:      addr,
		ServerName:   serverName,
		TLSVersion:   tls.VersionName(st.Version),
		CipherSuite:  tls.CipherSuiteName(st.CipherSuite),
		ALPN:         st.NegotiatedProtocol,
		Certificates: st.PeerCertificates,
	}, nil
}

// Certificate file formats recognised by ReadCertificates.
const (
	FormatPEM    = "PEM"
	FormatDER    = "DER"
	FormatPKCS12 = "PKCS#12"
)

// CertificateFile is what ReadCertificates found in a file.
type CertificateFile struct {
	// Format is FormatPEM, FormatDER or FormatPKCS12.
	Format string
	// Certificates in file order; for PKCS#12 the leaf first.
	Certificates []*x509.Certificate
	// HasKey reports a private key beside the certificates.
	HasKey bool
}

// ReadCertificates recognises PEM (any number of CERTIFICATE blocks, other
// blocks skipped), DER (one or more concatenated certificates) and PKCS#12
// (decrypted with password) and returns the certificates. A wrong PKCS#12
// password wraps ErrP12Password.
func ReadCertificates(data []byte, password string) (*CertificateFile, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("empty file")
	}
	if bytes.Contains(data, []byte("-----BEGIN ")) {
		return readPEM(data)
	}
	if certs, err := x509.ParseCertificates(data); err == nil && len(certs) > 0 {
		return &CertificateFile{Format: FormatDER, Certificates: certs}, nil
	}
	key, leaf, chain, err := DecodePKCS12(data, password)
	if err != nil {
		if errors.Is(err, ErrP12Password) {
			return nil, err
		}
		if data[0] != 0x30 {
			// Not even an ASN.1 SEQUENCE: the decoder's details would
			// only confuse.
			return nil, errors.New("not a certificate file: neither PEM, a DER certificate nor PKCS#12")
		}
		return nil, fmt.Errorf("not a certificate file: neither PEM, a DER certificate nor PKCS#12 (%w)", err)
	}
	return &CertificateFile{
		Format:       FormatPKCS12,
		Certificates: append([]*x509.Certificate{leaf}, chain...),
		HasKey:       key != nil,
	}, nil
}

func readPEM(data []byte) (*CertificateFile, error) {
	f := &CertificateFile{Format: FormatPEM}
	var others []string
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch {
		case b.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PEM certificate %d: %w", len(f.Certificates)+1, err)
			}
			f.Certificates = append(f.Certificates, c)
		case strings.HasSuffix(b.Type, "PRIVATE KEY"):
			f.HasKey = true
			others = append(others, b.Type)
		default:
			others = append(others, b.Type)
		}
	}
	if len(f.Certificates) == 0 {
		if len(others) == 0 {
			return nil, errors.New("PEM data holds no valid block")
		}
		return nil, fmt.Errorf("PEM data holds no CERTIFICATE block (found %s)", strings.Join(others, ", "))
	}
	return f, nil
}
