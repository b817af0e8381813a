package store

import (
	"encoding/binary"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Index layout. Each key starts with one byte naming its kind.
const (
	// FormatVersion is the on-disk format this build reads and writes.
	FormatVersion = 1

	keyVersion = "v" // uvarint FormatVersion
	keyActive  = "a" // active block id (4) + committed end (8)
	keyStats   = "s" // live pieces (8) + live piece bytes (8)
	prefPiece  = 'p' // 'p' + CID bytes -> entry
	prefPin    = 'r' // 'r' + CID bytes -> pin time, unix nanoseconds (8)
	prefMember = 'm' // 'm' + CID bytes + bucket (32) -> nothing: the piece is in the bucket
	prefBucket = 'b' // 'b' + bucket (32) + root CID bytes -> time added, unix nanoseconds (8)

	entryLen = 20 // block (4) + offset (8) + length (4) + crc32c (4)
)

// entry locates a piece's bytes.
type entry struct {
	block  uint32
	offset uint64
	length uint32
	crc    uint32
}

func (e entry) encode() []byte {
	b := make([]byte, entryLen)
	binary.BigEndian.PutUint32(b[0:], e.block)
	binary.BigEndian.PutUint64(b[4:], e.offset)
	binary.BigEndian.PutUint32(b[12:], e.length)
	binary.BigEndian.PutUint32(b[16:], e.crc)
	return b
}

func decodeEntry(c cid.Cid, b []byte) (entry, error) {
	if len(b) != entryLen {
		return entry{}, fmt.Errorf("%w: entry of %s has %d bytes, want %d", ErrIndexCorrupt, c, len(b), entryLen)
	}
	return entry{
		block:  binary.BigEndian.Uint32(b[0:]),
		offset: binary.BigEndian.Uint64(b[4:]),
		length: binary.BigEndian.Uint32(b[12:]),
		crc:    binary.BigEndian.Uint32(b[16:]),
	}, nil
}

func pieceKey(c cid.Cid) []byte { return append([]byte{prefPiece}, c.Bytes()...) }
func pinKey(c cid.Cid) []byte   { return append([]byte{prefPin}, c.Bytes()...) }

func memberKey(c cid.Cid, b Bucket) []byte {
	return append(append([]byte{prefMember}, c.Bytes()...), b[:]...)
}

func bucketKey(b Bucket, root cid.Cid) []byte {
	return append(append([]byte{prefBucket}, b[:]...), root.Bytes()...)
}

// active is the block being appended to and its committed end.
type active struct {
	block uint32
	end   uint64
}

func (a active) encode() []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint32(b, a.block)
	binary.BigEndian.PutUint64(b[4:], a.end)
	return b
}

func decodeActive(b []byte) (active, error) {
	if len(b) != 12 {
		return active{}, fmt.Errorf("%w: active-block record has %d bytes, want 12", ErrIndexCorrupt, len(b))
	}
	return active{block: binary.BigEndian.Uint32(b), end: binary.BigEndian.Uint64(b[4:])}, nil
}

// stats are the live pieces and bytes, kept exact under the commit lock.
type stats struct {
	pieces uint64
	bytes  uint64
}

func (s stats) encode() []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, s.pieces)
	binary.BigEndian.PutUint64(b[8:], s.bytes)
	return b
}

func decodeStats(b []byte) (stats, error) {
	if len(b) != 16 {
		return stats{}, fmt.Errorf("%w: stats record has %d bytes, want 16", ErrIndexCorrupt, len(b))
	}
	return stats{pieces: binary.BigEndian.Uint64(b), bytes: binary.BigEndian.Uint64(b[8:])}, nil
}
