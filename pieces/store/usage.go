package store

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
)

// Usage reports how much the store holds.
type Usage struct {
	Pieces     uint64 // live pieces
	PieceBytes uint64 // their bytes
	// InPlacePieces and InPlaceBytes are the part of them kept in place,
	// in files of the user's rather than in block files.
	InPlacePieces uint64
	InPlaceBytes  uint64
	Blocks        int    // block files
	DiskBytes     uint64 // bytes of all block files, dead space and holes included
	// AllocatedBytes is what the block files take on the filesystem, as
	// du counts it: holes punched where dropped pieces were are not in it.
	AllocatedBytes uint64
	// DeadBytes is what the block files take beyond the live pieces:
	// dropped pieces not yet given back, alignment, discarded puts.
	DeadBytes uint64
	DirectIO  bool // appends bypass the page cache (O_DIRECT)
}

// Usage reports the store's live content and its size on disk.
func (s *Store) Usage() (Usage, error) {
	s.cmu.Lock()
	u := Usage{Pieces: s.st.pieces, PieceBytes: s.st.bytes, InPlacePieces: s.st.placed, InPlaceBytes: s.st.placedBytes}
	s.cmu.Unlock()
	ids, err := s.blockIDs()
	if err != nil {
		return u, err
	}
	s.wmu.Lock()
	act := s.act
	u.DirectIO = s.app != nil && s.app.direct != nil
	s.wmu.Unlock()
	u.Blocks = len(ids)
	for _, id := range ids {
		fi, err := os.Stat(s.blockPath(id))
		if err != nil {
			return u, fmt.Errorf("stat block: %w", err)
		}
		u.AllocatedBytes += allocated(fi)
		if id == act.block { // its file may hold alignment padding
			u.DiskBytes += act.end
			continue
		}
		u.DiskBytes += uint64(fi.Size())
	}
	if inBlocks := u.PieceBytes - u.InPlaceBytes; u.AllocatedBytes > inBlocks {
		u.DeadBytes = u.AllocatedBytes - inBlocks
	}
	return u, nil
}

// VerifyAll re-hashes every piece against its CID and calls bad for each
// that fails. It returns how many pieces it checked.
func (s *Store) VerifyAll(ctx context.Context, bad func(c cid.Cid, err error)) (int, error) {
	n := 0
	err := s.List(ctx, func(c cid.Cid, _ int) error {
		data, err := s.GetPiece(ctx, c)
		var pe *PlacedError
		if errors.Is(err, pieces.ErrNotFound) && !errors.As(err, &pe) {
			return nil // dropped since the listing: a GC, or its in-place file gone
		}
		n++
		if err == nil {
			err = pieces.Verify(c, data)
		}
		if err != nil {
			bad(c, err)
		}
		return nil
	})
	return n, err
}
