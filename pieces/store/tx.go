package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb"

	"github.com/ddc-project/ddc/pieces"
)

// maxTxEntries bounds the index entries a Tx holds in memory: past it the
// Tx commits what it has (those pieces become readable, the root does not
// exist yet) and goes on. 65,536 entries is 64 GiB of 1 MiB chunks.
const maxTxEntries = 1 << 16

// Tx groups the pieces of one put: their bytes are appended as they come and
// made durable, with their index entries, in one Commit. Pieces of a Tx that
// is discarded, or of a process that dies before Commit, are never indexed.
// A Tx is used by one goroutine.
type Tx struct {
	s       *Store
	pending []pending
	seen    map[string]struct{}
	kept    map[string]struct{} // pieces kept from GC until the Tx is over (keepPut)
	touched map[uint32]*os.File
	pins    []cid.Cid
	places  []*Placement // files pieces are kept in place in (Place)
	cached  []cid.Cid    // roots recorded as cache at commit
	unsaved int64        // bytes appended, not yet committed: counted in Store.appended
	bucket  *Bucket      // set by InBucket
	members []member     // memberships recorded at commit
	tagged  []tagged     // descriptors whose tags the commit indexes
	done    bool
	scratch []byte // for checking stored copies

	// Set under Store.wmu while the Tx has appended bytes not yet
	// committed: it is counted in Store.inflight, and its bytes are lost
	// if Store.epoch moves past epoch (a block write or sync failed).
	open  bool
	epoch uint64
}

// member is a piece's membership of a bucket, or of none (NoBucket).
type member struct {
	c cid.Cid
	b Bucket
}

type pending struct {
	c      cid.Cid
	e      entry
	repair bool // replaces a stored copy that failed its checksum
}

var _ pieces.Putter = (*Tx)(nil)

// Begin starts a transaction.
func (s *Store) Begin() *Tx {
	return &Tx{s: s, seen: make(map[string]struct{}), kept: make(map[string]struct{}), touched: make(map[uint32]*os.File)}
}

// PutPiece appends data as the piece c unless the store already has it,
// and makes it a member of the Tx's bucket (InBucket), or of no bucket.
// The caller vouches that c names data (it hashed or verified it).
// PutPiece implements pieces.Putter.
func (t *Tx) PutPiece(c cid.Cid, data []byte) error {
	return t.put(c, data, t.in(), nil)
}

// PutPieceIn is PutPiece making c a member of bucket in (NoBucket: of no
// bucket) instead of the Tx's.
func (t *Tx) PutPieceIn(c cid.Cid, data []byte, in Bucket) error {
	return t.put(c, data, in, nil)
}

// in is the Tx's bucket, NoBucket when it has none.
func (t *Tx) in() Bucket {
	if t.bucket != nil {
		return *t.bucket
	}
	return NoBucket
}

// put stores piece c as a member of in: appended to the active block, or
// with at indexed where it lies in a placed file.
func (t *Tx) put(c cid.Cid, data []byte, in Bucket, at *placedAt) error {
	if t.done {
		return ErrClosed
	}
	size := len(data)
	if at != nil {
		size = at.sp.Length // data is nil: the bytes are in the file
	}
	if size > pieces.MaxPieceSize || size < 0 {
		return fmt.Errorf("%w: piece %s of %d bytes (max %d)", pieces.ErrTooLarge, c, size, pieces.MaxPieceSize)
	}
	k := c.KeyString()
	if _, ok := t.seen[k]; ok {
		return nil
	}
	if _, ok := t.kept[k]; !ok {
		t.s.keepPut(c) // before the look for a stored copy: a GC keeps what it finds
		t.kept[k] = struct{}{}
	}
	t.members = append(t.members, member{c, in})
	repair := false
	has, err := t.s.Has(c)
	if err != nil {
		return err
	}
	if has && in != NoBucket {
		// A piece stored before ddc recorded membership of no bucket has
		// none at all, and was put in no bucket: it stays readable so.
		if buckets, none, err := t.s.Reach(c); err != nil {
			return err
		} else if len(buckets) == 0 && !none {
			t.members = append(t.members, member{c, NoBucket})
		}
	}
	if has {
		// The stored copy is kept if it is intact; one that fails its
		// checksum is replaced by this one, so putting a file again
		// repairs it.
		var err error
		if t.scratch, err = t.s.ReadPiece(context.Background(), c, t.scratch); err == nil {
			if in != NoBucket && data != nil {
				if err := t.noteStoredTags(c, data); err != nil {
					return err
				}
			}
			t.seen[k] = struct{}{}
			return t.flushIfFull()
		} else if !errors.Is(err, pieces.ErrCorrupt) {
			return err
		}
		t.s.log.Warn("replacing a corrupt stored piece with the copy put", "cid", c, "err", err)
		repair = true
	}
	if err := t.s.fits(context.Background(), size); err != nil {
		return fmt.Errorf("store piece %s: %w", c, err)
	}
	var e entry
	if at != nil {
		if at.sp.Off < 0 {
			return fmt.Errorf("piece %s in place at offset %d", c, at.sp.Off)
		}
		e = entry{block: placedBit | at.p.id, offset: uint64(at.sp.Off), length: uint32(size), crc: at.sp.CRC}
		at.p.used = true
	} else {
		var f *os.File
		var wb span
		if e, f, wb, err = t.s.append(t, c, data); err != nil {
			return err
		}
		if wb.n > 0 {
			// Starts writeback and returns; Commit's fdatasync is still
			// what makes the bytes durable. A failure here is reported
			// there.
			startWriteback(f, wb.off, wb.n)
		}
		t.touched[e.block] = f
	}
	t.unsaved += int64(e.length)
	t.s.appended.Add(int64(e.length))
	if data != nil {
		t.noteTags(c, data, e)
	}
	t.seen[k] = struct{}{}
	t.pending = append(t.pending, pending{c: c, e: e, repair: repair})
	return t.flushIfFull()
}

// Member makes piece c, put in t, a member of bucket b too at commit
// (NoBucket: of no bucket): what a holder said it served c for.
func (t *Tx) Member(c cid.Cid, b Bucket) {
	t.members = append(t.members, member{c, b})
}

// flushIfFull commits what t holds once it reaches maxTxEntries entries.
func (t *Tx) flushIfFull() error {
	if len(t.pending)+len(t.members)+len(t.tagged) < maxTxEntries || len(t.places) > 0 {
		return nil // a placed file may not be at its path before the end
	}
	err := t.flush()
	t.release()
	return err
}

// Pin marks c as a root the user asked to keep (a file put or fetched);
// it is recorded at Commit.
func (t *Tx) Pin(c cid.Cid) { t.pins = append(t.pins, c) }

// Commit makes every piece put and pin durable and visible.
func (t *Tx) Commit() error {
	if t.done {
		return ErrClosed
	}
	t.done = true
	err := t.flush()
	t.release()
	t.s.unkeepPuts(t.kept)
	return err
}

// Discard abandons the Tx: its bytes are never indexed. They are cut off
// the active block when no other Tx is writing, else left as dead space.
func (t *Tx) Discard() {
	if !t.done {
		t.done = true
		t.release()
		t.s.unkeepPuts(t.kept)
	}
}

// notStored says which put failed, and why.
func (t *Tx) notStored(err error) error {
	if len(t.pending) == 0 {
		return err
	}
	return fmt.Errorf("put of %d piece(s) ending with %s not stored: %w", len(t.pending), t.pending[len(t.pending)-1].c, err)
}

// flush makes the pending pieces durable, then indexes them and the pins.
func (t *Tx) flush() error {
	s := t.s
	s.wmu.Lock()
	if err := s.writable(); err != nil {
		s.wmu.Unlock()
		return err
	}
	var files []*os.File
	if t.open {
		if t.epoch != s.epoch {
			s.wmu.Unlock()
			return t.notStored(s.spoiled())
		}
		if err := s.app.flush(); err != nil {
			s.failWrite(err)
			s.wmu.Unlock()
			return t.notStored(err)
		}
		t.touched[s.act.block] = s.app.f
		for _, f := range t.touched {
			files = append(files, f)
		}
	}
	snap := s.act // everything below snap.end is written, synced next
	s.wmu.Unlock()
	if t.open {
		if err := s.syncFiles(files, t.epoch); err != nil {
			return t.notStored(err)
		}
	}
	clear(t.touched)
	placed, err := t.syncPlaces()
	if err != nil {
		return t.notStored(err)
	}

	s.cmu.Lock()
	defer s.cmu.Unlock()
	if t.open {
		s.wmu.Lock()
		spoiled := t.epoch != s.epoch
		s.wmu.Unlock()
		if spoiled { // a write failed after the sync: its pages may hold ours
			return t.notStored(s.spoiled())
		}
	}
	b := new(leveldb.Batch)
	st := s.st
	for _, p := range t.pending {
		old, err := s.lookup(p.c)
		switch {
		case err == nil && !p.repair:
			continue // another Tx committed the same piece first
		case err == nil:
			st.remove(old) // replaced by the good copy
			if old.placed() {
				b.Delete(placedKey(old.fileID(), p.c))
			}
		case !errors.Is(err, pieces.ErrNotFound):
			return fmt.Errorf("look up %s: %w", p.c, err)
		}
		b.Put(pieceKey(p.c), p.e.encode())
		if p.e.placed() {
			b.Put(placedKey(p.e.fileID(), p.c), binary.BigEndian.AppendUint32(nil, p.e.length))
		}
		st.add(p.e)
	}
	for _, pf := range placed {
		b.Put(placeKey(pf.id), pf.was.encode(pf.path))
	}
	if len(placed) > 0 && s.version < FormatVersion {
		b.Put([]byte(keyVersion), binary.AppendUvarint(nil, FormatVersion))
	}
	now := binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
	for _, c := range t.pins {
		b.Put(pinKey(c), now)
		b.Delete(cacheKey(c)) // a pinned file is cache no more
		if t.bucket != nil {
			b.Put(bucketKey(*t.bucket, c), now)
		}
	}
	for _, m := range t.members {
		b.Put(memberKey(m.c, m.b), nil)
	}
	for _, c := range t.cached {
		b.Put(cacheKey(c), now)
	}
	if err := s.indexTags(b, t.members, t.tagged); err != nil {
		return t.notStored(fmt.Errorf("index tags: %w", err))
	}
	recorded := s.recorded
	if t.open && (snap.block > recorded.block || (snap.block == recorded.block && snap.end > recorded.end)) {
		recorded = snap
	}
	b.Put([]byte(keyActive), recorded.encode())
	b.Put([]byte(keyStats), st.encode())
	if err := s.write(b); err != nil {
		return t.notStored(fmt.Errorf("commit index: %w", err))
	}
	s.places.add(placed)
	if len(placed) > 0 {
		s.version = FormatVersion
	}
	s.pinned(t.pins)           // under cmu: before a sweep's next write
	s.appended.Add(-t.unsaved) // before the totals grow: LiveBytes never counts them twice
	t.unsaved = 0
	s.setStats(st)
	s.recorded = recorded
	t.pending = t.pending[:0]
	t.pins = t.pins[:0]
	t.cached = t.cached[:0]
	t.members = t.members[:0]
	t.tagged = t.tagged[:0]
	return nil
}

// release ends the Tx's share of the active block: once no Tx has bytes
// pending, whatever lies past the last commit is reclaimed.
func (t *Tx) release() {
	t.s.appended.Add(-t.unsaved) // discarded
	t.unsaved = 0
	if !t.open {
		return
	}
	s := t.s
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	t.open = false
	s.inflight--
	if s.inflight == 0 && !s.closed {
		s.reclaim()
	}
}
