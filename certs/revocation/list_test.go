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

func TestReasonString(t *testing.T) {
	for r, want := range map[Reason]string{
		ReasonKeyCompromise:      "keyCompromise",
		ReasonCertificateHold:    "certificateHold",
		ReasonPrivilegeWithdrawn: "privilegeWithdrawn",
		Reason(42):               "reason(42)",
	} {
		if got := r.String(); got != want {
			t.Errorf("Reason(%d).String() = %q, want %q", int(r), got, want)
		}
	}
}
