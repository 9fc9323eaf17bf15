package revocation

import (
	"math/big"
	"testing"
	"time"
)

func TestList(t *testing.T) {
	l := NewList()
	v0 := l.Version()
	at := time.Date(2026, 3, 4, 5, 6, 7, 890, time.FixedZone("x", 3600))
	if err := l.Revoke(big.NewInt(20), at, ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	if err := l.Revoke(big.NewInt(3), time.Time{}, ReasonUnspecified); err != nil {
		t.Fatal(err)
	}
	if l.Version() == v0 || l.Len() != 2 {
		t.Fatalf("version %d len %d after two revocations", l.Version(), l.Len())
	}
	e, ok := l.Lookup(big.NewInt(20))
	if !ok || !e.RevokedAt.Equal(at.Truncate(time.Second)) || e.RevokedAt.Location() != time.UTC || e.Reason != ReasonKeyCompromise {
		t.Errorf("lookup: %+v %v", e, ok)
	}
	entries, _ := l.Entries()
	if len(entries) != 2 || entries[0].Serial.Int64() != 3 || entries[1].Serial.Int64() != 20 {
		t.Errorf("entries not sorted by serial: %+v", entries)
	}
	entries[0].Serial.SetInt64(99) // callers get copies
	if _, ok := l.Lookup(big.NewInt(3)); !ok {
		t.Error("changing a returned entry changed the list")
	}
	if !l.Unrevoke(big.NewInt(3)) || l.Unrevoke(big.NewInt(3)) || l.Len() != 1 {
		t.Error("unrevoke")
	}

	for _, tt := range []struct {
		serial *big.Int
		reason Reason
		want   string
	}{
		{nil, ReasonUnspecified, "revocation: revoke: serial number must be a non-negative integer"},
		{big.NewInt(-1), ReasonUnspecified, "revocation: revoke: serial number must be a non-negative integer"},
		{big.NewInt(255), ReasonRemoveFromCRL, "revocation: revoke serial ff: invalid reason code 8"},
		{big.NewInt(255), Reason(7), "revocation: revoke serial ff: invalid reason code 7"},
	} {
		if err := l.Revoke(tt.serial, time.Time{}, tt.reason); err == nil || err.Error() != tt.want {
			t.Errorf("Revoke(%v, %d): got %v, want %s", tt.serial, tt.reason, err, tt.want)
		}
	}
}

func TestParseReason(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Reason
		err  string
	}{
		{in: "keyCompromise", want: ReasonKeyCompromise},
		{in: "KEYCOMPROMISE", want: ReasonKeyCompromise},
		{in: "certificateHold", want: ReasonCertificateHold},
		{in: "9", want: ReasonPrivilegeWithdrawn},
		{in: "0", want: ReasonUnspecified},
		{in: "8", err: `revocation: unknown revocation reason "8" (want unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn or aACompromise)`},
		{in: "removeFromCRL", err: `revocation: unknown revocation reason "removeFromCRL" (want unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn or aACompromise)`},
		{in: "stolen", err: `revocation: unknown revocation reason "stolen" (want unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn or aACompromise)`},
	} {
		got, err := ParseReason(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseReason(%q): got %v, want %s", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseReason(%q) = %v, %v", tt.in, got, err)
		}
		if back, _ := ParseReason(got.String()); back != got {
			t.Errorf("round trip of %v", got)
		}
	}
	if s := Reason(42).String(); s != "reason(42)" {
		t.Errorf("String of an unknown code: %q", s)
	}
}
