package revocation

import (
	"fmt"
	"math/big"
	"sort"
	"sync"
	"time"
)

// Reason is a CRLReason code (RFC 5280 section 5.3.1). OCSP reuses the same
// codes for its revocationReason (RFC 6960 section 4.2.1).
type Reason int

// The CRLReason codes. Value 7 is not used by RFC 5280.
const (
	ReasonUnspecified          Reason = 0
	ReasonKeyCompromise        Reason = 1
	ReasonCACompromise         Reason = 2
	ReasonAffiliationChanged   Reason = 3
	ReasonSuperseded           Reason = 4
	ReasonCessationOfOperation Reason = 5
	ReasonCertificateHold      Reason = 6
	ReasonRemoveFromCRL        Reason = 8
	ReasonPrivilegeWithdrawn   Reason = 9
	ReasonAACompromise         Reason = 10
)

var reasonNames = map[Reason]string{
	ReasonUnspecified:          "unspecified",
	ReasonKeyCompromise:        "keyCompromise",
	ReasonCACompromise:         "cACompromise",
	ReasonAffiliationChanged:   "affiliationChanged",
	ReasonSuperseded:           "superseded",
	ReasonCessationOfOperation: "cessationOfOperation",
	ReasonCertificateHold:      "certificateHold",
	ReasonRemoveFromCRL:        "removeFromCRL",
	ReasonPrivilegeWithdrawn:   "privilegeWithdrawn",
	ReasonAACompromise:         "aACompromise",
}

// String returns the ASN.1 name of the reason, as openssl prints it in
// camel case (RFC 5280 section 5.3.1).
func (r Reason) String() string {
	if s, ok := reasonNames[r]; ok {
		return s
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// Valid reports whether r is a reason code a CA may put in a CRL entry or an
// OCSP response. removeFromCRL is only meaningful in delta CRLs, which this
// package does not produce, so it is not valid here.
func (r Reason) Valid() bool {
	_, ok := reasonNames[r]
	return ok && r != ReasonRemoveFromCRL
}

// Entry is one revoked certificate.
type Entry struct {
	Serial    *big.Int
	RevokedAt time.Time
	Reason    Reason
}

// List is the set of revoked serial numbers of one issuer. It is the single
// source of truth that a Responder and a CRLPublisher answer from; both see a
// change at once. Safe for concurrent use. The zero value is not usable; call
// NewList.
type List struct {
	mu      sync.RWMutex
	entries map[string]Entry // keyed by serial.Text(16)
	version uint64
}

// NewList returns an empty revocation list.
func NewList() *List {
	return &List{entries: make(map[string]Entry)}
}

// Revoke marks serial as revoked at the given time for the given reason.
// Revoking an already revoked serial replaces its entry. A zero time means
// now. The time is kept to the second, the precision of both CRLs and OCSP
// (GeneralizedTime without fractions, RFC 5280 section 4.1.2.5.2).
func (l *List) Revoke(serial *big.Int, at time.Time, reason Reason) error {
	if serial == nil || serial.Sign() < 0 {
		return fmt.Errorf("revocation: revoke: serial number must be a non-negative integer")
	}
	if !reason.Valid() {
		return fmt.Errorf("revocation: revoke serial %x: invalid reason code %d", serial, int(reason))
	}
	if at.IsZero() {
		at = time.Now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries[serial.Text(16)] = Entry{Serial: new(big.Int).Set(serial), RevokedAt: at.UTC().Truncate(time.Second), Reason: reason}
	l.version++
	return nil
}

// Unrevoke removes serial from the list (a certificate taken off hold) and
// reports whether it was there.
func (l *List) Unrevoke(serial *big.Int) bool {
	if serial == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	k := serial.Text(16)
	if _, ok := l.entries[k]; !ok {
		return false
	}
	delete(l.entries, k)
	l.version++
	return true
}

// Lookup returns the entry for serial, if it is revoked.
func (l *List) Lookup(serial *big.Int) (Entry, bool) {
	if serial == nil {
		return Entry{}, false
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	e, ok := l.entries[serial.Text(16)]
	if ok {
		e.Serial = new(big.Int).Set(e.Serial)
	}
	return e, ok
}

// Entries returns a copy of every entry, sorted by serial number, and the
// version of the list they were read at.
func (l *List) Entries() ([]Entry, uint64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]Entry, 0, len(l.entries))
	for _, e := range l.entries {
		e.Serial = new(big.Int).Set(e.Serial)
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Serial.Cmp(out[j].Serial) < 0 })
	return out, l.version
}

// Len returns the number of revoked serials.
func (l *List) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.entries)
}

// Version is a counter bumped by every change, so that publishers know when
// to re-sign.
func (l *List) Version() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.version
}
