package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sync/atomic"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb"
)

// A hole is the bytes of a dropped piece, to give back to the filesystem.
// A GC keeps the holes of what it drops in memory and punches them all at
// once when its sweep is over, after the reads that may have found the
// pieces have ended (see punch): that is what makes a delete staged. A
// mark in the index says a sweep is under way: a process killed before it
// punched finds the dead space at its next Open by itself, from the gaps
// between the live pieces (see punchAfterCrash). What a hole shares of a
// filesystem block with a live piece is recorded (a remnant), so that it
// goes with that neighbour.
type hole struct {
	block  uint32
	offset uint64
	length uint32
}

const (
	prefHole = 'h' // 'h' + block (4) + offset (8) -> length (4): a remnant
	keySweep = "g" // present while a GC's holes are not punched yet
)

// skipPunch stops a GC before it punches its holes: tests stand for a
// process killed there.
var skipPunch atomic.Bool

// afterMark, when set, runs between a GC's mark and its sweep: tests do
// there what a read or a put does while a GC runs.
var afterMark func()

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

// punch frees the bytes of fresh holes, whose pieces index writes have
// dropped, with those of recorded remnants, once every read that looked
// one of the pieces up before has finished. It then forgets the recorded
// remnants and records what is left of blocks shared with live pieces. A
// read that starts later cannot find the pieces.
func (s *Store) punch(recorded, fresh []hole) error {
	if len(fresh) == 0 {
		return nil
	}
	s.rmu.Lock() // waits for reads in flight; new ones wait at most this long
	s.rmu.Unlock()
	forget := slices.Clone(recorded)
	var remnants []hole
	var errs []error
	for _, h := range merge(append(recorded, fresh...)) {
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
	if err := s.rewriteHoles(forget, remnants); err != nil { // lost with a crash: a few KiB of dead space
		errs = append(errs, fmt.Errorf("record what the holes left: %w", err))
	}
	return errors.Join(errs...)
}

// punchWithRecorded punches fresh with the recorded remnants.
func (s *Store) punchWithRecorded(fresh []hole) error {
	recorded, err := s.remnants()
	if err != nil {
		return err
	}
	return s.punch(recorded, fresh)
}

// remnants reads the recorded remnants.
func (s *Store) remnants() ([]hole, error) {
	var holes []hole
	err := s.scanKeys(context.Background(), []byte{prefHole}, func(k, v []byte) error {
		h, err := decodeHole(k, v)
		if err == nil {
			holes = append(holes, h)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read the remnants of holes: %w", err)
	}
	return holes, nil
}

// markSweep records that a sweep is under way (synced: before any of its
// drops can be durable), or that its holes are punched.
func (s *Store) markSweep(on bool) error {
	b := new(leveldb.Batch)
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if on {
		b.Put([]byte(keySweep), nil)
		return s.write(b)
	}
	b.Delete([]byte(keySweep))
	return s.writeBatch(b, false) // lost with a crash: the next Open looks for gaps for nothing
}

// punchAfterCrash punches, at Open, what a GC that stopped before its
// punch left: every gap between the live pieces of the block files, which
// only dead bytes fill once no put is in progress (Open cut away the
// uncommitted tail of the active block).
func (s *Store) punchAfterCrash() error {
	if ok, err := s.has([]byte(keySweep)); err != nil || !ok {
		return err
	}
	var live []hole
	err := s.scan(context.Background(), prefPiece, func(c cid.Cid, v []byte) error {
		e, err := decodeEntry(c, v)
		if err == nil {
			live = append(live, hole{block: e.block, offset: e.offset, length: e.length})
		}
		return err
	})
	if err != nil {
		return err
	}
	slices.SortFunc(live, func(a, b hole) int {
		return cmp.Or(cmp.Compare(a.block, b.block), cmp.Compare(a.offset, b.offset))
	})
	ids, err := s.blockIDs()
	if err != nil {
		return err
	}
	var gaps []hole
	i := 0
	for _, id := range ids {
		end := s.act.end
		if id != s.act.block {
			fi, err := os.Stat(s.blockPath(id))
			if err != nil {
				return fmt.Errorf("stat block: %w", err)
			}
			end = uint64(fi.Size())
		}
		at := uint64(0)
		for ; i < len(live) && live[i].block == id; i++ {
			gaps = appendGap(gaps, id, at, live[i].offset)
			at = max(at, live[i].offset+uint64(live[i].length))
		}
		gaps = appendGap(gaps, id, at, end)
	}
	recorded, err := s.remnants() // each within a gap: forgotten, and found again
	if err != nil {
		return err
	}
	s.log.Info("a GC stopped before giving back its space: punching the gaps between live pieces", "gaps", len(gaps))
	s.rmu.Lock()
	s.rmu.Unlock()
	var remnants []hole
	for _, g := range gaps {
		off, n := g.aligned()
		remnants = append(remnants, g.remnants(off, n)...)
		if n == 0 {
			continue
		}
		if f, err := s.file(g.block); err == nil {
			punchHole(f, off, n)
		}
	}
	if err := s.rewriteHoles(recorded, remnants); err != nil {
		return err
	}
	return s.markSweep(false)
}

// appendGap adds [from, to) of block as a gap, in parts a hole's 32-bit
// length can say.
func appendGap(gaps []hole, block uint32, from, to uint64) []hole {
	for from < to {
		n := min(to-from, math.MaxUint32&^(holeAlign-1))
		gaps = append(gaps, hole{block: block, offset: from, length: uint32(n)})
		from += n
	}
	return gaps
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
