package bucket

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
)

// ErrBadTombstone is the error of a tombstone that fails verification.
var ErrBadTombstone = errors.New("bad tombstone")

// Tombstone says that a file was deleted from a bucket. It is signed by
// the owner's key, or by a key that a grant of delete in the bucket names
// (carried in Token), so any node can check it without asking anyone;
// nodes that keep the file drop it on seeing one, and keep the tombstone
// so that a keeper that was away learns it too instead of copying the
// file back.
type Tombstone struct {
	Bucket ID        `json:"bucket"`
	Root   cid.Cid   `json:"root"`
	Time   time.Time `json:"time"`
	Token  string    `json:"token,omitempty"` // the grant of delete to Signer; none when Signer is the owner
	Signer PublicKey `json:"signer"`
	Sig    []byte    `json:"sig"`
}

// NewTombstone signs the deletion of root from bucket b at now with key,
// which is the owner's or the subject of token, a grant of delete.
func NewTombstone(key PrivateKey, b ID, root cid.Cid, token string, now time.Time) Tombstone {
	t := Tombstone{Bucket: b, Root: root, Time: now.Truncate(time.Second), Token: token, Signer: key.Public()}
	t.Sig = key.Sign(t.signed())
	return t
}

// signed is what the signature covers.
func (t Tombstone) signed() []byte {
	msg := append([]byte("ddc-tombstone\x00"), t.Bucket[:]...)
	msg = append(msg, t.Root.Bytes()...)
	return binary.BigEndian.AppendUint64(msg, uint64(t.Time.Unix()))
}

// Verify checks t against the owner of its bucket: the signature, the
// grant of delete when the signer is not the owner (valid when t was
// made), and that t was not made in the future.
func (t Tombstone) Verify(owner PublicKey, now time.Time) error {
	if !t.Root.Defined() {
		return fmt.Errorf("%w: no root", ErrBadTombstone)
	}
	if !t.Signer.Verify(t.signed(), t.Sig) {
		return fmt.Errorf("%w for %s in bucket %s: the signature does not verify", ErrBadTombstone, t.Root, t.Bucket)
	}
	if t.Time.After(now.Add(ClockSkew)) {
		return fmt.Errorf("%w for %s in bucket %s: made at %s, in the future", ErrBadTombstone, t.Root, t.Bucket, t.Time.UTC().Format(time.RFC3339))
	}
	if t.Signer == owner {
		return nil
	}
	if t.Token == "" {
		return fmt.Errorf("%w for %s in bucket %s: signed by %s, not the owner, with no grant", ErrBadTombstone, t.Root, t.Bucket, t.Signer)
	}
	tok, err := ParseToken(t.Token)
	if err != nil {
		return fmt.Errorf("%w for %s: %w", ErrBadTombstone, t.Root, err)
	}
	signer := t.Signer
	if err := tok.Verify(Request{Bucket: t.Bucket, Owner: owner, Op: OpDelete, Requester: &signer, Now: t.Time}); err != nil {
		return fmt.Errorf("%w for %s: %w", ErrBadTombstone, t.Root, err)
	}
	return nil
}

// Encode is t as bytes (JSON), as nodes hand it on and keep it.
func (t Tombstone) Encode() []byte {
	b, _ := json.Marshal(t)
	return b
}

// DecodeTombstone reads an encoded tombstone; Verify it before use.
func DecodeTombstone(b []byte) (Tombstone, error) {
	var t Tombstone
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("%w: %w", ErrBadTombstone, err)
	}
	return t, nil
}
