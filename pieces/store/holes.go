package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"

	"github.com/syndtr/goleveldb/leveldb"
)

// A hole is the bytes of a dropped piece, to give back to the filesystem.
// Dropping a piece records its hole in the same index write, so a process
// killed before the bytes went punches them at its next open; punching is
// done only once the reads that may have found the piece have ended (see
// punch), which is what makes a delete staged.
type hole struct {
	block  uint32
	offset uint64
	length uint32
}

const prefHole = 'h' // 'h' + block (4) + offset (8) -> length (4)

// skipPunch leaves holes recorded and unpunched: tests stand for a process
// killed before it punched them.
var skipPunch atomic.Bool

// holeAlign is the filesystem block the punched ranges are cut to: only
// whole blocks inside a hole are freed, so a live neighbour sharing a
// block with it keeps every byte, and no partial block is zeroed for
// nothing.
const holeAlign = 4096

func (h hole) key() []byte {
	k := make([]byte, 13)
	k[0] = prefHole
	binary.BigEndian.PutUint32(k[1:], h.block)
	binary.BigEndian.PutUint64(k[5:], h.offset)
	return k
}

func (h hole) value() []byte { return binary.BigEndian.AppendUint32(nil, h.length) }

func decodeHole(k, v []byte) (hole, error) {
	if len(k) != 13 || len(v) != 4 {
		return hole{}, fmt.Errorf("%w: hole record %x = %x", ErrIndexCorrupt, k, v)
	}
	return hole{block: binary.BigEndian.Uint32(k[1:]), offset: binary.BigEndian.Uint64(k[5:]), length: binary.BigEndian.Uint32(v)}, nil
}

// remnants are the parts of h outside its aligned part [off, off+n): all
// of h when n is 0.
func (h hole) remnants(off, n int64) []hole {
	if n == 0 {
		return []hole{h}
	}
	var rs []hole
	if head := uint64(off) - h.offset; head > 0 {
		rs = append(rs, hole{block: h.block, offset: h.offset, length: uint32(head)})
	}
	end, cut := h.offset+uint64(h.length), uint64(off+n)
	if end > cut {
		rs = append(rs, hole{block: h.block, offset: cut, length: uint32(end - cut)})
	}
	return rs
}

// aligned is the part of h made of whole filesystem blocks.
func (h hole) aligned() (off, n int64) {
	start := (h.offset + holeAlign - 1) / holeAlign * holeAlign
	end := (h.offset + uint64(h.length)) / holeAlign * holeAlign
	if end <= start {
		return 0, 0
	}
	return int64(start), int64(end - start)
}

// punch frees the bytes of holes whose pieces an index write has dropped,
// once every read that looked one of them up before has finished, then
// forgets them but for the parts of blocks they share with what is still
// live. A read that starts later cannot find them.
func (s *Store) punch(holes []hole) error {
	if len(holes) == 0 || skipPunch.Load() {
		return nil
	}
	s.rmu.Lock() // waits for reads in flight; new ones wait at most this long
	s.rmu.Unlock()
	forget := slices.Clone(holes) // merge sorts and joins holes in place
	var remnants []hole
	var errs []error
	for _, h := range merge(holes) {
		// What is left of a block that a live piece shares stays recorded,
		// so that it is freed with its neighbour when that one goes.
		off, n := h.aligned()
		remnants = append(remnants, h.remnants(off, n)...)
		if n == 0 {
			continue
		}
		f, err := s.file(h.block)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := punchHole(f, off, n); err != nil {
			if !s.noPunch.Swap(true) {
				s.log.Warn("cannot punch holes in block files: the space of dropped pieces stays on disk", "block", f.Name(), "err", err)
			}
		}
	}
	if err := s.rewriteHoles(forget, remnants); err != nil { // lost with a crash: punched again at open
		errs = append(errs, fmt.Errorf("forget punched holes: %w", err))
	}
	return errors.Join(errs...)
}

// holeWrites is how many hole records one write forgets or keeps:
// commits wait for one such write at most.
const holeWrites = 1024

// rewriteHoles forgets the records of holes and records remnants, in
// unsynced writes of holeWrites records each.
func (s *Store) rewriteHoles(holes, remnants []hole) error {
	b := new(leveldb.Batch)
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		s.cmu.Lock()
		defer s.cmu.Unlock()
		err := s.writeBatch(b, false)
		b.Reset()
		return err
	}
	for _, h := range holes {
		if b.Delete(h.key()); b.Len() >= holeWrites {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	for _, h := range remnants { // after the deletes: a remnant may keep a key
		if b.Put(h.key(), h.value()); b.Len() >= holeWrites {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// merge joins holes that touch, in place, so that pieces smaller than a
// filesystem block, dropped side by side, free the blocks they fill
// together. Holes from 4 GiB on stay apart (a hole's length is 32 bits).
func merge(holes []hole) []hole {
	slices.SortFunc(holes, func(a, b hole) int {
		return cmp.Or(cmp.Compare(a.block, b.block), cmp.Compare(a.offset, b.offset))
	})
	out := holes[:0]
	for _, h := range holes {
		if n := len(out); n > 0 {
			last := &out[n-1]
			if end := last.offset + uint64(last.length); last.block == h.block && end == h.offset && uint64(last.length)+uint64(h.length) <= math.MaxUint32 {
				last.length += h.length
				continue
			}
		}
		out = append(out, h)
	}
	return out
}

// punchRecorded punches the holes a process left when it stopped between
// dropping pieces and freeing their bytes.
func (s *Store) punchRecorded() error {
	var holes []hole
	err := s.scanKeys(context.Background(), []byte{prefHole}, func(k, v []byte) error {
		h, err := decodeHole(k, v)
		if err == nil {
			holes = append(holes, h)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("read the holes left to punch: %w", err)
	}
	return s.punch(holes)
}
