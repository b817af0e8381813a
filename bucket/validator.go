package bucket

import (
	"errors"
	"fmt"
)

// RecordValidator checks bucket records for the DHT: it has the method
// set of go-libp2p-record's Validator, for kad-dht's NamespacedValidator
// under RecordNamespace, without this package importing networking.
type RecordValidator struct{}

// Validate accepts value under key only if it is a valid record signed by
// its owner, of the bucket key names.
func (RecordValidator) Validate(key string, value []byte) error {
	id, err := IDFromKey(key)
	if err != nil {
		return err
	}
	r, err := ParseRecord(value)
	if err != nil {
		return err
	}
	if r.Bucket != id {
		return fmt.Errorf("%w: a record of bucket %s under the key of %s", ErrBadRecord, r.Bucket, id)
	}
	return nil
}

// Select returns the index of the newest valid record in values (see
// Newer); invalid ones never win.
func (v RecordValidator) Select(key string, values [][]byte) (int, error) {
	best, bestRec := -1, Record{}
	for i, b := range values {
		if v.Validate(key, b) != nil {
			continue
		}
		r, _ := ParseRecord(b)
		if best < 0 || Newer(r, bestRec) {
			best, bestRec = i, r
		}
	}
	if best < 0 {
		return 0, errors.New("no valid bucket record")
	}
	return best, nil
}
