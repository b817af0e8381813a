package bucket

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
)

// ID names a bucket. It is self-certifying: the hash of its owner's key
// and a nonce, so a record for the bucket proves who owns it. Its text
// form is "ddcb" and the 32 bytes in lowercase base32, without padding.
type ID [32]byte

// ErrBadID is the error of a bucket ID that does not parse.
var ErrBadID = errors.New("bad bucket ID")

const idPrefix = "ddcb"

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NonceSize is the length of a bucket's nonce.
const NonceSize = 16

// DeriveID is the ID of the bucket owner makes with nonce.
func DeriveID(owner PublicKey, nonce [NonceSize]byte) ID {
	h := sha256.New()
	h.Write([]byte("ddc/bucket/v1\x00"))
	h.Write(owner[:])
	h.Write(nonce[:])
	var id ID
	h.Sum(id[:0])
	return id
}

// NewNonce returns a random nonce for a new bucket.
func NewNonce() ([NonceSize]byte, error) {
	var n [NonceSize]byte
	_, err := rand.Read(n[:])
	return n, err
}

// String returns the text form.
func (id ID) String() string { return idPrefix + strings.ToLower(idEncoding.EncodeToString(id[:])) }

// ParseID reads the text form.
func ParseID(s string) (ID, error) {
	var id ID
	rest, ok := strings.CutPrefix(s, idPrefix)
	if !ok || len(rest) != idEncoding.EncodedLen(len(id)) {
		return id, fmt.Errorf("%w: %.80q (want %s followed by %d base32 letters)", ErrBadID, s, idPrefix, idEncoding.EncodedLen(len(id)))
	}
	b, err := idEncoding.DecodeString(strings.ToUpper(rest))
	if err != nil || rest != strings.ToLower(rest) {
		return id, fmt.Errorf("%w: %.80q is not lowercase base32", ErrBadID, s)
	}
	copy(id[:], b)
	if id.String() != s { // trailing bits set: one ID, one text form
		return ID{}, fmt.Errorf("%w: %.80q is not in canonical form", ErrBadID, s)
	}
	return id, nil
}

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	*id = v
	return err
}

// holdersDomain separates the key a bucket's holders announce from any
// piece's CID.
const holdersDomain = "ddc/bucket-holders/v1\x00"

// HoldersKey is the key under which the nodes that hold data of bucket id
// announce themselves in the DHT, beside the CIDs of the pieces: the raw
// CID of a domain string and the ID (a piece would have to hold exactly
// those bytes to share it, and would then merely list extra holders).
func HoldersKey(id ID) cid.Cid {
	return pieces.SHA2_256.Sum(pieces.CodecRaw, append([]byte(holdersDomain), id[:]...))
}
