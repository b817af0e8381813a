package pieces

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"golang.org/x/crypto/blake2b"
	"lukechampine.com/blake3"
)

// Codecs of the two kinds of piece.
const (
	CodecRaw     = cid.Raw     // 0x55: a data piece
	CodecDagCBOR = cid.DagCBOR // 0x71: a descriptor piece
)

// Hash is a multihash function ddc writes and verifies.
type Hash struct {
	Code uint64 // multihash code
	Name string // multihash name, as the CLI accepts it
	sum  func([]byte) [32]byte
}

// The hash functions ddc supports, all with 32-byte digests.
var (
	SHA2_256   = Hash{Code: mh.SHA2_256, Name: "sha2-256", sum: sha256.Sum256}
	BLAKE3     = Hash{Code: mh.BLAKE3, Name: "blake3", sum: blake3.Sum256}
	BLAKE2b256 = Hash{Code: mh.BLAKE2B_MIN + 31, Name: "blake2b-256", sum: blake2b.Sum256}
)

// DefaultHash is what the builder uses unless told otherwise.
var DefaultHash = SHA2_256

var hashes = []Hash{SHA2_256, BLAKE3, BLAKE2b256}

// HashNames lists the names ParseHash accepts.
func HashNames() []string {
	names := make([]string, len(hashes))
	for i, h := range hashes {
		names[i] = h.Name
	}
	return names
}

// ParseHash returns the hash function called name.
func ParseHash(name string) (Hash, error) {
	for _, h := range hashes {
		if h.Name == name {
			return h, nil
		}
	}
	return Hash{}, fmt.Errorf("%w %q (supported: %s)", ErrUnsupportedHash, name, strings.Join(HashNames(), ", "))
}

func hashByCode(code uint64) (Hash, error) {
	for _, h := range hashes {
		if h.Code == code {
			return h, nil
		}
	}
	name, ok := mh.Codes[code]
	if !ok {
		name = "unknown"
	}
	return Hash{}, fmt.Errorf("%w %s (0x%x; supported: %s)", ErrUnsupportedHash, name, code, strings.Join(HashNames(), ", "))
}

// Sum returns the CIDv1 with the given codec for data hashed with h.
func (h Hash) Sum(codec uint64, data []byte) cid.Cid {
	d := h.sum(data)
	buf := make([]byte, 0, 4+len(d))
	buf = appendUvarint(buf, h.Code)
	buf = appendUvarint(buf, uint64(len(d)))
	buf = append(buf, d[:]...)
	return cid.NewCidV1(codec, mh.Multihash(buf))
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// CheckCID reports whether c names a block ddc can hold: CIDv1 and a
// supported hash with a 32-byte digest. Any codec will do: blocks of
// codecs ddc does not read (imported from a CAR, say) are kept and served
// as opaque bytes; CheckPieceCID is for what ddc reads as a piece.
func CheckCID(c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("%w: empty CID", ErrInvalidCID)
	}
	if c.Version() != 1 {
		return fmt.Errorf("%w %s: version %d, ddc uses CIDv1", ErrInvalidCID, c, c.Version())
	}
	dec, err := mh.Decode(c.Hash())
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrInvalidCID, c, err)
	}
	if _, err := hashByCode(dec.Code); err != nil {
		return fmt.Errorf("CID %s: %w", c, err)
	}
	if dec.Length != 32 {
		return fmt.Errorf("%w %s: digest of %d bytes, ddc uses 32", ErrUnsupportedHash, c, dec.Length)
	}
	return nil
}

// CheckPieceCID is CheckCID for a ddc piece: a data piece (raw) or a
// descriptor (dag-cbor).
func CheckPieceCID(c cid.Cid) error {
	if err := CheckCID(c); err != nil {
		return err
	}
	if t := c.Type(); t != CodecRaw && t != CodecDagCBOR {
		return fmt.Errorf("%w %s: codec 0x%x, ddc pieces are raw (0x55) or dag-cbor (0x71)", ErrInvalidCID, c, t)
	}
	return nil
}

// ParseCID parses a CID string and checks that ddc can hold the block it
// names. A CIDv0 (Qm…, what older IPFS tools print) becomes the CIDv1 of
// the same dag-pb block.
func ParseCID(s string) (cid.Cid, error) {
	if s == "" {
		return cid.Undef, fmt.Errorf("%w: empty string", ErrInvalidCID)
	}
	c, err := cid.Decode(s)
	if err != nil {
		// go-cid repeats its own "invalid cid: " prefix; say it once.
		msg := err.Error()
		for strings.HasPrefix(msg, "invalid cid: ") {
			msg = strings.TrimPrefix(msg, "invalid cid: ")
		}
		return cid.Undef, fmt.Errorf("%w %q: %s", ErrInvalidCID, s, msg)
	}
	c = V1(c)
	if err := CheckCID(c); err != nil {
		return cid.Undef, err
	}
	return c, nil
}

// V1 is c as a CIDv1: a CIDv0 (Qm…) names the same block as the CIDv1
// of its codec and hash, which is how the store holds it.
func V1(c cid.Cid) cid.Cid {
	if c.Version() == 0 {
		return cid.NewCidV1(c.Type(), c.Hash())
	}
	return c
}

// Verify reports whether data is the content c names, hashing it with the
// function c names. A mismatch is a *CorruptError.
func Verify(c cid.Cid, data []byte) error {
	if err := CheckCID(c); err != nil {
		return err
	}
	dec, _ := mh.Decode(c.Hash())
	h, _ := hashByCode(dec.Code)
	d := h.sum(data)
	if !bytes.Equal(d[:], dec.Digest) {
		return &CorruptError{CID: c, Reason: fmt.Sprintf("%s digest of %d bytes does not match", h.Name, len(data))}
	}
	return nil
}
