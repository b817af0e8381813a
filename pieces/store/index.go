package store

import (
	"encoding/binary"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Index layout. Each key starts with one byte naming its kind.
const (
	// FormatVersion is the on-disk format this build writes once a store
	// holds pieces in place (version 2: entries may point into files of
	// the user's). A store without any stays at version 1, which builds
	// from before in-place pieces read too; this build reads both.
	FormatVersion      = 2
	formatBeforePlaced = 1

	keyVersion = "v" // uvarint FormatVersion
	keyActive  = "a" // active block id (4) + committed end (8)
	keyStats   = "s" // live pieces (8) + live piece bytes (8)
	prefPiece  = 'p' // 'p' + CID bytes -> entry
	prefPin    = 'r' // 'r' + CID bytes -> pin time, unix nanoseconds (8)
	prefMember = 'm' // 'm' + CID bytes + bucket (32) -> nothing: the piece is in the bucket
	prefBucket = 'b' // 'b' + bucket (32) + root CID bytes -> time added, unix nanoseconds (8)

	entryLen = 20 // block (4) + offset (8) + length (4) + crc32c (4)
)

// entry locates a piece's bytes: in a block file, or in place in a file
// of the user's (block has placedBit set; see inplace.go).
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

// stats are the live pieces and bytes, kept exact under the commit lock;
// placed and placedBytes are the part of them kept in place. A store of
// before in-place pieces records the first two only.
type stats struct {
	pieces      uint64
	bytes       uint64
	placed      uint64
	placedBytes uint64
}

func (s stats) encode() []byte {
	b := make([]byte, 16, 32)
	binary.BigEndian.PutUint64(b, s.pieces)
	binary.BigEndian.PutUint64(b[8:], s.bytes)
	if s.placed > 0 || s.placedBytes > 0 {
		b = binary.BigEndian.AppendUint64(b, s.placed)
		b = binary.BigEndian.AppendUint64(b, s.placedBytes)
	}
	return b
}

func decodeStats(b []byte) (stats, error) {
	if len(b) != 16 && len(b) != 32 {
		return stats{}, fmt.Errorf("%w: stats record has %d bytes, want 16 or 32", ErrIndexCorrupt, len(b))
	}
	st := stats{pieces: binary.BigEndian.Uint64(b), bytes: binary.BigEndian.Uint64(b[8:])}
	if len(b) == 32 {
		st.placed, st.placedBytes = binary.BigEndian.Uint64(b[16:]), binary.BigEndian.Uint64(b[24:])
	}
	return st, nil
}

// add counts the piece at e in.
func (s *stats) add(e entry) {
	s.pieces++
	s.bytes += uint64(e.length)
	if e.placed() {
		s.placed++
		s.placedBytes += uint64(e.length)
	}
}

// remove counts the piece at e out.
func (s *stats) remove(e entry) {
	s.pieces--
	s.bytes -= uint64(e.length)
	if e.placed() {
		s.placed--
		s.placedBytes -= uint64(e.length)
	}
}

// blockBytes is the live bytes that lie in block files.
func (s stats) blockBytes() uint64 { return s.bytes - s.placedBytes }
