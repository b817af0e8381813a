package bucket

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
)

// NameRecord maps a name to a CID: one version of a name's history. A
// bucket's name (Bucket set) is signed by the bucket's owner, or by the
// subject of a grant of put that it carries (Token, the chain's text);
// an account's name (Bucket zero) by the account, Signer. Seq orders the
// versions and Prev is the CID of the version before (undefined for the
// first, or once the history was pruned). Its encoding is canonical
// DAG-CBOR, so a record is also a piece: CID, which Prev points at.
type NameRecord struct {
	Bucket ID              // zero: an account's name
	Owner  PublicKey       // the bucket's owner: with Nonce, proves Bucket
	Nonce  [NonceSize]byte // the bucket's nonce
	Name   string
	Value  cid.Cid
	Seq    uint64
	Prev   cid.Cid   // cid.Undef: no earlier version is linked
	Time   time.Time // when it was signed, whole seconds
	Signer PublicKey
	Token  string // a grant of put to Signer (its chain), when Signer is not the bucket's owner
	Sig    []byte
}

// Name limits and constants.
const (
	MaxName       = 512  // bytes of a name
	maxNameRecord = 8192 // bytes of an encoded name record: a token is at most 4 KiB
	nameVersion   = 1
	nameContext   = "ddc/name-record/v1\x00" // before the bytes a name record signs
	nameKeyDomain = "ddc/name-key/v1\x00"    // before what a name's DHT key hashes
	// NameNamespace is the DHT namespace of name records.
	NameNamespace = "ddcn"
)

// Name errors, each wrapped with what was wrong and which name.
var (
	ErrBadName       = errors.New("bad name")
	ErrBadNameRecord = errors.New("bad name record")
)

// nameWire is a name record on the wire: a DAG-CBOR map; optional
// fields are left out when empty. Keys sort length-first, as both the
// core deterministic encoding and DAG-CBOR want.
type nameWire struct {
	V      uint     `cbor:"v"`
	Name   string   `cbor:"name"`
	Value  cidLink  `cbor:"value"`
	Seq    uint64   `cbor:"seq"`
	Prev   *cidLink `cbor:"prev,omitempty"`
	Time   int64    `cbor:"time"`
	Signer []byte   `cbor:"signer"`
	Bucket []byte   `cbor:"bucket,omitempty"`
	Owner  []byte   `cbor:"owner,omitempty"`
	Nonce  []byte   `cbor:"nonce,omitempty"`
	Token  string   `cbor:"token,omitempty"`
	Sig    []byte   `cbor:"sig,omitempty"`
}

// cidLink is a CID as DAG-CBOR writes it: tag 42 over a 0x00 byte and
// the CID's bytes, so IPLD tools see a link.
type cidLink struct{ c cid.Cid }

func (l cidLink) MarshalCBOR() ([]byte, error) {
	if !l.c.Defined() {
		return nil, errors.New("undefined CID")
	}
	return encMode.Marshal(cbor.Tag{Number: 42, Content: append([]byte{0}, l.c.Bytes()...)})
}

func (l *cidLink) UnmarshalCBOR(b []byte) error {
	var t cbor.Tag
	if err := decMode.Unmarshal(b, &t); err != nil {
		return err
	}
	raw, ok := t.Content.([]byte)
	if t.Number != 42 || !ok || len(raw) < 2 || raw[0] != 0 {
		return errors.New("a link is not tag 42 over 0x00 and a CID")
	}
	c, err := cid.Cast(raw[1:])
	if err != nil {
		return fmt.Errorf("link: %w", err)
	}
	l.c = c
	return nil
}

func (r *NameRecord) wire(withSig bool) nameWire {
	w := nameWire{V: nameVersion, Name: r.Name, Value: cidLink{r.Value}, Seq: r.Seq, Time: r.Time.Unix(), Signer: r.Signer[:], Token: r.Token}
	if r.Prev.Defined() {
		w.Prev = &cidLink{r.Prev}
	}
	if r.InBucket() {
		w.Bucket, w.Owner, w.Nonce = r.Bucket[:], r.Owner[:], r.Nonce[:]
	}
	if withSig {
		w.Sig = r.Sig
	}
	return w
}

// InBucket reports whether r names a bucket's name, not an account's.
func (r *NameRecord) InBucket() bool { return r.Bucket != ID{} }

// signed is what Signer signs.
func (r *NameRecord) signed() ([]byte, error) {
	b, err := encMode.Marshal(r.wire(false))
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrBadNameRecord, r.Name, err)
	}
	return append([]byte(nameContext), b...), nil
}

// NewBucketName is the unsigned record of name in the bucket rec
// describes.
func NewBucketName(rec Record, name string, value cid.Cid, seq uint64, prev cid.Cid, now time.Time) NameRecord {
	return NameRecord{Bucket: rec.Bucket, Owner: rec.Owner, Nonce: rec.Nonce, Name: name, Value: value, Seq: seq, Prev: prev, Time: now.Truncate(time.Second)}
}

// NewAccountName is the unsigned record of name of the account key signs
// it with.
func NewAccountName(name string, value cid.Cid, seq uint64, prev cid.Cid, now time.Time) NameRecord {
	return NameRecord{Name: name, Value: value, Seq: seq, Prev: prev, Time: now.Truncate(time.Second)}
}

// Sign signs r with key; token (a grant of put to key, or empty when key
// is the bucket's owner or r is an account's name) goes in as its chain.
// It checks r as Verify does at now.
func (r *NameRecord) Sign(key PrivateKey, token string, now time.Time) error {
	r.Signer, r.Token = key.Public(), ""
	if token != "" {
		t, err := ParseToken(token)
		if err != nil {
			return err
		}
		r.Token = t.Chain() // never a bearer token's secret
	}
	msg, err := r.signed()
	if err != nil {
		return err
	}
	r.Sig = key.Sign(msg)
	return r.Verify(now)
}

// Verify checks r at now: its fields, the bucket's ID against its owner
// and nonce, that it was not signed in the future, the grant of put when
// the signer is not the owner (valid when r was signed), and the
// signature.
func (r *NameRecord) Verify(now time.Time) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w %q: %s", ErrBadNameRecord, r.Name, fmt.Sprintf(format, a...))
	}
	if err := CheckName(r.Name); err != nil {
		return fmt.Errorf("%w: %w", ErrBadNameRecord, err)
	}
	switch {
	case r.Seq == 0:
		return bad("sequence number 0")
	case !r.Value.Defined():
		return bad("no CID")
	case r.Time.Unix() <= 0:
		return bad("no time")
	case r.Time.After(now.Add(ClockSkew)):
		return bad("signed in the future, at %s", r.Time.UTC().Format(time.RFC3339))
	}
	if err := pieces.CheckCID(r.Value); err != nil {
		return fmt.Errorf("%w %q: %w", ErrBadNameRecord, r.Name, err)
	}
	if r.Prev.Defined() && (r.Prev.Type() != pieces.CodecDagCBOR || pieces.CheckCID(r.Prev) != nil) {
		return bad("previous version %s is not a name record's CID", r.Prev)
	}
	if r.InBucket() {
		if DeriveID(r.Owner, r.Nonce) != r.Bucket {
			return bad("bucket %s does not derive from owner %s and the nonce", r.Bucket, r.Owner)
		}
		switch {
		case r.Signer == r.Owner && r.Token != "":
			return bad("signed by the owner of bucket %s, with a grant it does not need", r.Bucket)
		case r.Signer != r.Owner && r.Token == "":
			return fmt.Errorf("%w %q: signed by %s, not the owner of bucket %s, with no grant of put: %w", ErrBadNameRecord, r.Name, r.Signer, r.Bucket, ErrNoGrant)
		case r.Signer != r.Owner:
			t, err := ParseToken(r.Token)
			if err != nil {
				return fmt.Errorf("%w %q: %w", ErrBadNameRecord, r.Name, err)
			}
			if t.Key != nil {
				return bad("carries a bearer token's secret")
			}
			signer := r.Signer
			if err := t.Verify(Request{Bucket: r.Bucket, Owner: r.Owner, Op: OpPut, Requester: &signer, Now: r.Time}); err != nil {
				return fmt.Errorf("%w %q: signer %s: %w", ErrBadNameRecord, r.Name, r.Signer, err)
			}
		}
	} else if r.Owner != (PublicKey{}) || r.Nonce != ([NonceSize]byte{}) || r.Token != "" {
		return bad("an account's name with a bucket's owner, nonce or grant")
	}
	msg, err := r.signed()
	if err != nil {
		return err
	}
	if !r.Signer.Verify(msg, r.Sig) {
		return bad("the signature is not %s's", r.Signer)
	}
	return nil
}

// Marshal encodes a signed record: canonical DAG-CBOR.
func (r *NameRecord) Marshal() ([]byte, error) {
	if len(r.Sig) == 0 {
		return nil, fmt.Errorf("%w %q: not signed", ErrBadNameRecord, r.Name)
	}
	b, err := encMode.Marshal(r.wire(true))
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrBadNameRecord, r.Name, err)
	}
	if len(b) > maxNameRecord {
		return nil, fmt.Errorf("%w %q: %d bytes, at most %d", ErrBadNameRecord, r.Name, len(b), maxNameRecord)
	}
	return b, nil
}

// CID is the CID of r's encoding, a dag-cbor piece: what the next
// version's Prev names.
func (r *NameRecord) CID() cid.Cid {
	b, err := r.Marshal()
	if err != nil {
		return cid.Undef
	}
	return NameRecordCID(b)
}

// NameRecordCID is the CID of an encoded name record.
func NameRecordCID(b []byte) cid.Cid { return pieces.SHA2_256.Sum(pieces.CodecDagCBOR, b) }

// DecodeNameRecord decodes a name record, refusing any bytes that are
// not its one canonical encoding; Verify checks it.
func DecodeNameRecord(b []byte) (NameRecord, error) {
	var w nameWire
	if err := decodeCanonical("name record", b, maxNameRecord, &w); err != nil {
		return NameRecord{}, err
	}
	r := NameRecord{Name: w.Name, Value: w.Value.c, Seq: w.Seq, Time: time.Unix(w.Time, 0), Token: w.Token, Sig: w.Sig}
	switch {
	case w.V != nameVersion:
		return r, fmt.Errorf("%w name record %q: version %d, this ddc reads %d", ErrMalformed, w.Name, w.V, nameVersion)
	case len(w.Signer) != len(r.Signer) || len(w.Sig) != 64:
		return r, fmt.Errorf("%w name record %q: signer or signature of the wrong length", ErrMalformed, w.Name)
	case w.Bucket != nil && (len(w.Bucket) != len(r.Bucket) || len(w.Owner) != len(r.Owner) || len(w.Nonce) != len(r.Nonce)):
		return r, fmt.Errorf("%w name record %q: bucket, owner or nonce of the wrong length", ErrMalformed, w.Name)
	case w.Bucket == nil && (w.Owner != nil || w.Nonce != nil):
		return r, fmt.Errorf("%w name record %q: an owner or nonce without a bucket", ErrMalformed, w.Name)
	}
	if w.Prev != nil {
		r.Prev = w.Prev.c
	}
	copy(r.Signer[:], w.Signer)
	copy(r.Bucket[:], w.Bucket)
	copy(r.Owner[:], w.Owner)
	copy(r.Nonce[:], w.Nonce)
	return r, nil
}

// ParseNameRecord decodes a name record and verifies it at now.
func ParseNameRecord(b []byte, now time.Time) (NameRecord, error) {
	r, err := DecodeNameRecord(b)
	if err != nil {
		return r, err
	}
	return r, r.Verify(now)
}

// NewerName reports whether a should replace b, two valid records of one
// name: the higher sequence number wins, and of two with the same one
// the greater CID, so that every node keeps the same.
func NewerName(a, b NameRecord) bool {
	if a.Seq != b.Seq {
		return a.Seq > b.Seq
	}
	return bytes.Compare(a.CID().Bytes(), b.CID().Bytes()) > 0
}

// NameScope is whose a name is: a bucket's, or (Bucket zero) an
// account's.
type NameScope struct {
	Bucket  ID
	Account PublicKey
}

func (s NameScope) String() string {
	if s.Bucket != (ID{}) {
		return s.Bucket.String()
	}
	return s.Account.String()
}

// Scope is the scope r's name is in.
func (r *NameRecord) Scope() NameScope {
	if r.InBucket() {
		return NameScope{Bucket: r.Bucket}
	}
	return NameScope{Account: r.Signer}
}

// NameID is what identifies a name in its scope: the SHA-256 of a domain
// string, the scope and the name. The DHT key is NameNamespace and it;
// stores root a name's versions under it.
type NameID [32]byte

// NameIDOf is the NameID of name (as CheckName accepts it) in scope s.
func NameIDOf(s NameScope, name string) NameID {
	h := sha256.New()
	h.Write([]byte(nameKeyDomain))
	if s.Bucket != (ID{}) {
		h.Write([]byte{'b'})
		h.Write(s.Bucket[:])
	} else {
		h.Write([]byte{'k'})
		h.Write(s.Account[:])
	}
	h.Write([]byte(name))
	var id NameID
	h.Sum(id[:0])
	return id
}

// Key is the DHT key of the name.
func (id NameID) Key() string { return "/" + NameNamespace + "/" + string(id[:]) }

// NameIDFromKey reads the NameID of a DHT key.
func NameIDFromKey(key string) (NameID, error) {
	var id NameID
	rest, ok := strings.CutPrefix(key, "/"+NameNamespace+"/")
	if !ok || len(rest) != len(id) {
		return id, fmt.Errorf("%w: DHT key %x is not a name key", ErrBadName, key)
	}
	copy(id[:], rest)
	return id, nil
}

// NormalizeName is name without a leading "/": a file's path, as put
// --path takes it, names the same as the path without it.
func NormalizeName(name string) string { return strings.TrimPrefix(name, "/") }

// CheckName reports why name (normalized) cannot be a name: 1 to MaxName
// bytes of printable UTF-8, segments between "/" neither empty nor "."
// nor "..".
func CheckName(name string) error {
	switch {
	case len(name) == 0 || len(name) > MaxName:
		return fmt.Errorf("%w %.70q: %d bytes, want 1 to %d", ErrBadName, name, len(name), MaxName)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w %.70q: not UTF-8", ErrBadName, name)
	}
	for _, c := range name {
		if !unicode.IsPrint(c) {
			return fmt.Errorf("%w %.70q: has a control character", ErrBadName, name)
		}
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w %.70q: empty, \".\" or \"..\" between slashes", ErrBadName, name)
		}
	}
	return nil
}
