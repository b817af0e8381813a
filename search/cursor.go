package search

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
)

// A cursor is opaque to its users: base64url of a version byte, eight
// bytes that fingerprint the scope (a bucket, or none) and the query, and
// the sort key of the last result given. A cursor is refused by any other
// query or scope, so a page can never be taken from a different listing.

const cursorVersion = 1

// MaxCursor bounds an encoded cursor: a sort key holds at most an escaped
// value of MaxTagValueLen bytes and a CID.
const MaxCursor = 12 << 10

func fingerprint(scope string, q Query) []byte {
	h := sha256.New()
	h.Write([]byte("ddc search cursor v1\x00"))
	h.Write(binary.AppendUvarint(nil, uint64(len(scope))))
	h.Write([]byte(scope))
	for _, t := range q.Terms {
		s := t.String()
		h.Write(binary.AppendUvarint(nil, uint64(len(s))))
		h.Write([]byte(s))
	}
	return h.Sum(nil)[:8]
}

// EncodeCursor returns the cursor that continues q in scope after the
// result with sort key after.
func EncodeCursor(scope string, q Query, after []byte) string {
	b := append([]byte{cursorVersion}, fingerprint(scope, q)...)
	return base64.RawURLEncoding.EncodeToString(append(b, after...))
}

// DecodeCursor returns the sort key a cursor continues after; "" is the
// first page (nil).
func DecodeCursor(scope string, q Query, s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	if len(s) > MaxCursor {
		return nil, fmt.Errorf("%w: cursor of %d characters (max %d)", ErrBadQuery, len(s), MaxCursor)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 10 || b[0] != cursorVersion {
		return nil, fmt.Errorf("%w: cursor %.32q… is not one this node issued", ErrBadQuery, s)
	}
	if !bytes.Equal(b[1:9], fingerprint(scope, q)) {
		return nil, fmt.Errorf("%w: cursor is for another query or bucket: give it with the terms and bucket it came from", ErrBadQuery)
	}
	return b[9:], nil
}
