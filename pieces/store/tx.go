package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb"
	"golang.org/x/sys/unix"

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
	touched map[uint32]*os.File
	pins    []cid.Cid
	done    bool
	scratch []byte // for checking stored copies
}

type pending struct {
	c      cid.Cid
	e      entry
	repair bool // replaces a stored copy that failed its checksum
}

var _ pieces.Putter = (*Tx)(nil)

// Begin starts a transaction.
func (s *Store) Begin() *Tx {
	return &Tx{s: s, seen: make(map[string]struct{}), touched: make(map[uint32]*os.File)}
}

// PutPiece appends data as the piece c unless the store already has it. The
// caller vouches that c names data (it hashed or verified it). PutPiece
// implements pieces.Putter.
func (t *Tx) PutPiece(c cid.Cid, data []byte) error {
	if t.done {
		return ErrClosed
	}
	if len(data) > pieces.MaxPieceSize {
		return fmt.Errorf("%w: piece %s of %d bytes (max %d)", pieces.ErrTooLarge, c, len(data), pieces.MaxPieceSize)
	}
	k := c.KeyString()
	if _, ok := t.seen[k]; ok {
		return nil
	}
	repair := false
	if has, err := t.s.Has(c); err != nil {
		return err
	} else if has {
		// The stored copy is kept if it is intact; one that fails its
		// checksum is replaced by this one, so putting a file again
		// repairs it.
		var err error
		if t.scratch, err = t.s.ReadPiece(context.Background(), c, t.scratch); err == nil {
			t.seen[k] = struct{}{}
			return nil
		} else if !errors.Is(err, pieces.ErrCorrupt) {
			return err
		}
		t.s.log.Warn("replacing a corrupt stored piece with the copy put", "cid", c, "err", err)
		repair = true
	}
	e, f, wb, err := t.s.append(c, data)
	if err != nil {
		return err
	}
	if wb.n > 0 {
		// Starts writeback and returns; Commit's fdatasync is still what
		// makes the bytes durable. A failure here is reported there.
		unix.SyncFileRange(int(f.Fd()), int64(wb.off), int64(wb.n), unix.SYNC_FILE_RANGE_WRITE)
	}
	t.seen[k] = struct{}{}
	t.touched[e.block] = f
	t.pending = append(t.pending, pending{c: c, e: e, repair: repair})
	if len(t.pending) >= maxTxEntries {
		return t.flush()
	}
	return nil
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
	return t.flush()
}

// Discard abandons the Tx: its bytes stay as dead space, never indexed.
func (t *Tx) Discard() { t.done = true }

func (t *Tx) flush() error {
	s := t.s
	s.wmu.Lock()
	if s.closed {
		s.wmu.Unlock()
		return ErrClosed
	}
	if err := s.failed; err != nil {
		s.wmu.Unlock()
		return err
	}
	if err := s.app.flush(); err != nil {
		s.failed = s.fail(err)
		s.wmu.Unlock()
		return s.failed
	}
	snap := s.act // everything below snap.end is written, synced next
	af := s.app.f
	s.wmu.Unlock()
	t.touched[snap.block] = af
	files := make([]*os.File, 0, len(t.touched))
	for _, f := range t.touched {
		files = append(files, f)
	}
	if err := s.syncFiles(files); err != nil {
		return err
	}
	clear(t.touched)

	s.cmu.Lock()
	defer s.cmu.Unlock()
	b := new(leveldb.Batch)
	st := s.st
	for _, p := range t.pending {
		key := pieceKey(p.c)
		if has, err := s.db.Has(key, nil); err != nil {
			return fmt.Errorf("look up %s: %w", p.c, err)
		} else if has && p.repair {
			b.Put(key, p.e.encode()) // same CID, same size: the totals stay
			continue
		} else if has {
			continue // another Tx committed the same piece first
		}
		b.Put(key, p.e.encode())
		st.pieces++
		st.bytes += uint64(p.e.length)
	}
	now := binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
	for _, c := range t.pins {
		b.Put(pinKey(c), now)
	}
	if snap.block > s.recorded.block || (snap.block == s.recorded.block && snap.end > s.recorded.end) {
		s.recorded = snap
	}
	b.Put([]byte(keyActive), s.recorded.encode())
	b.Put([]byte(keyStats), st.encode())
	if err := s.db.Write(b, syncWrite); err != nil {
		return fmt.Errorf("commit index: %w", err)
	}
	s.st = st
	t.pending = t.pending[:0]
	t.pins = t.pins[:0]
	return nil
}

// span is a byte range of a block file.
type span struct{ off, n uint64 }

// append writes data at the end of the active block, sealing it first when
// data would take it past the block size. It returns the range whose
// writeback the caller should start, if one is due.
func (s *Store) append(c cid.Cid, data []byte) (entry, *os.File, span, error) {
	crc := crc32.Checksum(data, castagnoli)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return entry{}, nil, span{}, ErrClosed
	}
	if s.failed != nil {
		return entry{}, nil, span{}, s.failed
	}
	if s.act.end > 0 && s.act.end+uint64(len(data)) > uint64(s.opts.BlockSize) {
		if err := s.seal(); err != nil {
			return entry{}, nil, span{}, err
		}
	}
	wb, err := s.app.write(data)
	if err != nil {
		err = fmt.Errorf("store piece %s in %s: %w", c, s.app.f.Name(), err)
		if s.app.direct != nil {
			// Staged bytes of other Txs may be lost with this write:
			// stop writing rather than let them commit.
			s.failed = s.fail(err)
		}
		return entry{}, nil, span{}, err
	}
	e := entry{block: s.act.block, offset: s.act.end, length: uint32(len(data)), crc: crc}
	s.act.end = s.app.end
	return e, s.app.f, wb, nil
}

// fail turns a failed direct write into the error every later write gets.
func (s *Store) fail(err error) error {
	s.log.Error("block write failed; writes stop until the store is reopened", "err", err)
	return fmt.Errorf("store writes stopped after a failed write (reopen to recover): %w", err)
}

// seal finishes the active block and starts the next. The old one is
// synced by the Commit of every Tx that wrote to it; the new file's
// directory entry is synced here.
func (s *Store) seal() error {
	if err := s.app.seal(); err != nil {
		s.failed = s.fail(err)
		return s.failed
	}
	next := s.act.block + 1
	f, err := s.file(next)
	if err != nil {
		return err
	}
	if err := syncDir(filepath.Join(s.dir, "blocks")); err != nil {
		return err
	}
	app, err := newAppender(f, 0, s.opts.DirectIO)
	if err != nil {
		return err
	}
	s.log.Debug("sealed block", "block", s.act.block, "bytes", s.act.end)
	s.sealed = append(s.sealed, s.app.f)
	s.act, s.app = active{block: next}, app
	return nil
}

// SyncWritten makes durable the bytes appends have written to block files
// so far (not those still gathered in a stage), so that a later Commit has
// less to flush. A long Tx calls it now and then while it appends: the
// device then flushes while the data still comes, instead of all at the
// end. It may run concurrently with appends and commits. A failed sync
// stops writes, as a failed write does, since the kernel reports it once.
func (s *Store) SyncWritten() error {
	s.wmu.Lock()
	if s.closed || s.failed != nil {
		s.wmu.Unlock()
		return nil // Commit reports it
	}
	files := append(s.sealed, s.app.f)
	s.sealed = nil
	s.wmu.Unlock()
	return s.syncFiles(files)
}

// syncFiles makes the written bytes of files durable. The kernel reports a
// lost writeback once per file, to whichever sync comes first; a later
// sync of the same file succeeds although pages are gone. So syncs run one
// at a time, and a failure stops the store's writes (as a failed write
// does) before the next sync starts: every Tx that wrote to a file before
// its sync failed fails too, instead of indexing lost bytes.
func (s *Store) syncFiles(files []*os.File) error {
	s.smu.Lock()
	defer s.smu.Unlock()
	s.wmu.Lock()
	failed := s.failed
	s.wmu.Unlock()
	if failed != nil {
		return failed
	}
	for _, f := range files {
		if err := syncData(f); err != nil {
			err = fmt.Errorf("sync block %s: %w", f.Name(), err)
			s.wmu.Lock()
			if s.failed == nil {
				s.failed = s.fail(err)
			}
			s.wmu.Unlock()
			return err
		}
	}
	return nil
}

// syncData is fdatasync; tests replace it to fail.
var syncData = func(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
