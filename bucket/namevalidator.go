package bucket

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// NameValidator checks name records for the DHT: it has the method set
// of go-libp2p-record's Validator, for kad-dht's NamespacedValidator
// under NameNamespace. Now gives the time records are checked at
// (time.Now when nil).
type NameValidator struct {
	Now func() time.Time
}

func (v NameValidator) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Validate accepts value under key only if it is a valid, signed name
// record of the name key is of.
func (v NameValidator) Validate(key string, value []byte) error {
	id, err := NameIDFromKey(key)
	if err != nil {
		return err
	}
	r, err := ParseNameRecord(value, v.now())
	if err != nil {
		return err
	}
	if NameIDOf(r.Scope(), r.Name) != id {
		return fmt.Errorf("%w %q of %s: under the DHT key of another name", ErrBadNameRecord, r.Name, r.Scope())
	}
	return nil
}

// Select returns the index of the newest valid record in values: the
// highest sequence number, then the greatest CID; of identical records
// the first, so a record put again replaces its copy (and its age).
// Invalid ones never win.
func (v NameValidator) Select(key string, values [][]byte) (int, error) {
	best := -1
	var bestRec NameRecord
	for i, b := range values {
		if best >= 0 && bytes.Equal(b, values[best]) {
			continue
		}
		if v.Validate(key, b) != nil {
			continue
		}
		r, _ := DecodeNameRecord(b)
		if best < 0 || NewerName(r, bestRec) {
			best, bestRec = i, r
		}
	}
	if best < 0 {
		return 0, errors.New("no valid name record")
	}
	return best, nil
}
