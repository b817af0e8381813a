package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb"
)

// prefName roots what a name's history keeps: 'N' + name (32 bytes, the
// caller's identifier of a name) + CID -> time rooted, unix nanoseconds
// (8). GC keeps every CID so rooted, and the pieces under it.
const prefName = 'N'

// NameSize is the length of a name's identifier in the index.
const NameSize = 32

func nameKey(name [NameSize]byte, c cid.Cid) []byte {
	return append(append([]byte{prefName}, name[:]...), c.Bytes()...)
}

// RootNamed makes cids roots of name: the pieces of its history (its
// records and the CIDs they map to) stay until UnrootNamed lets them go.
// A CID the store does not hold yet is rooted all the same: GC keeps it
// once it arrives.
func (s *Store) RootNamed(name [NameSize]byte, cids ...cid.Cid) error {
	if s.opts.ReadOnly {
		return ErrReadOnly
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	b := new(leveldb.Batch)
	now := binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
	for _, c := range cids {
		b.Put(nameKey(name, c), now)
	}
	if err := s.write(b); err != nil {
		return fmt.Errorf("root %d CIDs of name %x: %w", len(cids), name[:6], err)
	}
	s.pinned(cids) // under cmu, as a commit's pins: a GC running walks them
	return nil
}

// NamedRoots calls fn for every CID rooted for name.
func (s *Store) NamedRoots(ctx context.Context, name [NameSize]byte, fn func(cid.Cid) error) error {
	prefix := append([]byte{prefName}, name[:]...)
	return s.scanKeys(ctx, prefix, func(k, _ []byte) error {
		c, err := cid.Cast(k[len(prefix):])
		if err != nil {
			return fmt.Errorf("%w: name root key %x: %w", ErrIndexCorrupt, k, err)
		}
		return fn(c)
	})
}

// UnrootNamed lets go every root of name but keep, and returns how many
// went: GC may then take them, unless something else keeps them.
func (s *Store) UnrootNamed(ctx context.Context, name [NameSize]byte, keep ...cid.Cid) (int, error) {
	if s.opts.ReadOnly {
		return 0, ErrReadOnly
	}
	kept := make(map[string]bool, len(keep))
	for _, c := range keep {
		kept[c.KeyString()] = true
	}
	var drop []cid.Cid
	if err := s.NamedRoots(ctx, name, func(c cid.Cid) error {
		if !kept[c.KeyString()] {
			drop = append(drop, c)
		}
		return nil
	}); err != nil {
		return 0, err
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	b := new(leveldb.Batch)
	for _, c := range drop {
		b.Delete(nameKey(name, c))
	}
	if err := s.write(b); err != nil {
		return 0, fmt.Errorf("unroot name %x: %w", name[:6], err)
	}
	return len(drop), nil
}

// nameRoots lists every CID a name roots, for GC.
func (s *Store) nameRoots(ctx context.Context) ([]cid.Cid, error) {
	var roots []cid.Cid
	err := s.scanKeys(ctx, []byte{prefName}, func(k, _ []byte) error {
		c, err := cid.Cast(k[1+NameSize:])
		if err != nil {
			return fmt.Errorf("%w: name root key %x: %w", ErrIndexCorrupt, k, err)
		}
		roots = append(roots, c)
		return nil
	})
	return roots, err
}
