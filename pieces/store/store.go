package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb"

	"github.com/ddc-project/ddc/pieces"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Store is a directory of block files and their index.
type Store struct {
	dir  string
	opts Options
	log  *slog.Logger
	lock *os.File

	dbmu     sync.RWMutex
	db       *leveldb.DB // see indexdb.go
	indexErr error       // a failed index write, until reopenIndex (under cmu)

	fmu   sync.RWMutex
	files map[uint32]*os.File // every block file opened so far

	// wmu serialises appends to the active block.
	wmu      sync.Mutex
	act      active    // act.end is the active block's appended size, committed or not
	app      *appender // writes the active block
	refuse   error     // set when open read-only: every write gets it
	epoch    uint64    // counts the block writes and syncs that failed
	lost     error     // the last of them
	broken   bool      // the appender starts afresh before the next append
	inflight int       // Txs with appended bytes not yet committed or discarded
	closed   bool
	sealed   []*os.File // blocks sealed since SyncWritten last ran

	// smu serialises block syncs (see syncFiles).
	smu sync.Mutex

	// cmu serialises index commits and guards what they change.
	cmu      sync.Mutex
	st       stats
	recorded active // the active record last committed; never moves back

	tagsStale bool   // opened read-only with a tag index to rebuild
	version   uint64 // the format recorded; moves to FormatVersion with the first in-place piece (under cmu)
	places    placements

	// rmu is held shared by every read from lookup to the end of its read
	// of the bytes: a GC takes it to know such reads are over before it
	// frees the bytes of pieces it dropped (see punch).
	rmu     sync.RWMutex
	gcmu    sync.Mutex  // one GC at a time
	live    liveness    // what keeps pieces alive outside the index
	noPunch atomic.Bool // holes cannot be punched here: said once
	// appended is the bytes of pieces appended by Txs not yet committed:
	// the quota counts them with the live ones.
	appended  atomic.Int64
	liveBytes atomic.Uint64                                                // st.bytes, read without cmu (see setStats)
	makeRoom  atomic.Pointer[func(ctx context.Context, need uint64) error] // see SetMakeRoom
}

var (
	_ pieces.Getter      = (*Store)(nil)
	_ pieces.PieceReader = (*Store)(nil)
)

// Open opens the store in dir, creating it if it does not exist, and
// recovers from an interrupted put. It fails with ErrLocked when another
// process has dir open (for writing, or with ReadOnly for reading when
// this open is for writing) and ErrVersion when dir holds another format.
func Open(dir string, opts Options) (s *Store, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.ReadOnly {
		if _, err := os.Stat(filepath.Join(dir, "blocks")); err != nil {
			return nil, fmt.Errorf("open store %s read-only: %w", dir, err)
		}
	} else if err := os.MkdirAll(filepath.Join(dir, "blocks"), 0o755); err != nil {
		return nil, fmt.Errorf("create store %s: %w", dir, err)
	}
	s = &Store{dir: dir, opts: opts, log: opts.Logger, files: make(map[uint32]*os.File)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
			s = nil
		}
	}()
	if s.lock, err = lockDir(dir, opts.ReadOnly); err != nil {
		return s, err
	}
	if err := s.openIndexAtStart(); err != nil {
		return s, err
	}
	if err := s.checkVersion(); err != nil {
		return s, err
	}
	if opts.ReadOnly {
		// Every write path checks refuse first: none reaches the disk.
		s.refuse = fmt.Errorf("%w: %s", ErrReadOnly, dir)
		if current, err := s.tagIndexCurrent(); err != nil || !current {
			s.tagsStale = true // rebuilt by the next writable open
		}
		return s, s.loadState()
	}
	if err := s.recover(); err != nil {
		return s, err
	}
	if err := s.punchAfterCrash(); err != nil {
		return s, err
	}
	return s, s.checkTagIndex()
}

// lockDir takes the store's lock: exclusive for a writer, shared for a
// reader, so readers exclude a writer but not each other.
func lockDir(dir string, shared bool) (*os.File, error) {
	flag := os.O_CREATE | os.O_RDWR
	if shared {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), flag, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock store %s: %w", dir, err)
	}
	if err := lockFile(f, shared); err != nil {
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("lock store %s: %w", dir, err)
	}
	return f, nil
}

func (s *Store) checkVersion() error {
	b, err := s.get([]byte(keyVersion))
	if errors.Is(err, leveldb.ErrNotFound) && s.opts.ReadOnly {
		return fmt.Errorf("%w: %s has no format version", ErrIndexCorrupt, s.dir)
	}
	if errors.Is(err, leveldb.ErrNotFound) {
		// A new index beside block files that hold data is a lost one.
		// Otherwise the store is new: it records an empty first commit
		// with its version, so that "no commit recorded" never means a
		// store whose first put failed.
		ids, err := s.blockIDs()
		if err != nil {
			return err
		}
		if err := s.checkNoData(ids); err != nil {
			return err
		}
		b := new(leveldb.Batch)
		b.Put([]byte(keyVersion), binary.AppendUvarint(nil, formatBeforePlaced))
		b.Put([]byte(keyActive), active{block: 1}.encode())
		if !s.opts.NoTagIndex {
			b.Put([]byte(keyTagIndex), binary.AppendUvarint(nil, TagIndexVersion))
		}
		s.cmu.Lock()
		defer s.cmu.Unlock()
		s.version = formatBeforePlaced
		return s.write(b)
	}
	if err != nil {
		return fmt.Errorf("read store version: %w", err)
	}
	v, n := binary.Uvarint(b)
	if n <= 0 || n != len(b) {
		return fmt.Errorf("%w: version record %x", ErrIndexCorrupt, b)
	}
	if v != FormatVersion && v != formatBeforePlaced {
		return fmt.Errorf("%w: %s has format %d, this ddc reads %d and %d", ErrVersion, s.dir, v, formatBeforePlaced, FormatVersion)
	}
	s.version = v
	return nil
}

// loadState reads what the last commit recorded: the active block and the
// store's totals.
func (s *Store) loadState() error {
	s.act = active{block: 1}
	if b, err := s.get([]byte(keyActive)); err == nil {
		if s.act, err = decodeActive(b); err != nil {
			return err
		}
		s.recorded = s.act
	} else if !errors.Is(err, leveldb.ErrNotFound) {
		return fmt.Errorf("read active block: %w", err)
	}
	if b, err := s.get([]byte(keyStats)); err == nil {
		if s.st, err = decodeStats(b); err != nil {
			return err
		}
		s.liveBytes.Store(s.st.bytes)
	} else if !errors.Is(err, leveldb.ErrNotFound) {
		return fmt.Errorf("read store stats: %w", err)
	}
	return s.loadPlaces()
}

// recover restores the state the last commit recorded: the active block is
// cut back to its committed end and later block files are removed.
func (s *Store) recover() error {
	if err := s.loadState(); err != nil {
		return err
	}
	ids, err := s.blockIDs()
	if err != nil {
		return err
	}
	if s.recorded == (active{}) { // no commit recorded: nothing here can be proven uncommitted
		if err := s.checkNoData(ids); err != nil {
			return err
		}
	}
	for _, id := range ids {
		if id > s.act.block {
			s.log.Warn("removing block file of an interrupted put", "block", s.blockPath(id))
			if err := os.Remove(s.blockPath(id)); err != nil {
				return fmt.Errorf("remove uncommitted block: %w", err)
			}
		}
	}
	f, err := s.file(s.act.block)
	if err != nil {
		return err
	}
	// The active file may have just been created: make its name durable
	// before any commit can point into it.
	if err := syncDir(filepath.Join(s.dir, "blocks")); err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat block: %w", err)
	}
	switch size := uint64(fi.Size()); {
	case size > s.act.end:
		s.log.Warn("reclaiming uncommitted tail of block", "block", f.Name(), "bytes", size-s.act.end)
		if err := f.Truncate(int64(s.act.end)); err != nil {
			return fmt.Errorf("truncate block %s: %w", f.Name(), err)
		}
		if err := fdatasync(f); err != nil {
			return fmt.Errorf("sync block %s: %w", f.Name(), err)
		}
	case size < s.act.end:
		// Committed bytes are missing: the disk lost synced data. Reads of
		// the pieces there report corruption. Appends go on in a new
		// block, never over the range the index still points into, which
		// a GC dropping those pieces would punch.
		s.log.Error("block file shorter than its committed end; appends go on in a new block", "block", f.Name(), "size", size, "committed", s.act.end)
		next := s.act.block + 1
		if f, err = s.file(next); err != nil {
			return err
		}
		if err := syncDir(filepath.Join(s.dir, "blocks")); err != nil {
			return err
		}
		s.act = active{block: next}
		s.recorded = s.act
	}
	s.app, err = newAppender(f, s.act.end, s.opts.DirectIO)
	return err
}

// checkNoData fails with ErrIndexMissing if any of the block files ids
// holds bytes: an index without a commit beside data is not this store's
// index, and recovering against it would delete the data.
func (s *Store) checkNoData(ids []uint32) error {
	var files, bytes int64
	for _, id := range ids {
		fi, err := os.Stat(s.blockPath(id))
		if err != nil {
			return fmt.Errorf("stat block: %w", err)
		}
		if fi.Size() > 0 {
			files, bytes = files+1, bytes+fi.Size()
		}
	}
	if files == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s holds %d block file(s) with %d bytes, but its index (%s) records no commit; "+
		"it was lost, moved or replaced. Nothing was changed: put the index folder back, or move %s away to start an empty store",
		ErrIndexMissing, s.dir, files, bytes, filepath.Join(s.dir, "index"), filepath.Join(s.dir, "blocks"))
}

func (s *Store) blockPath(id uint32) string {
	return filepath.Join(s.dir, "blocks", fmt.Sprintf("%08d.blk", id))
}

func (s *Store) blockIDs() ([]uint32, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "blocks"))
	if err != nil {
		return nil, fmt.Errorf("list blocks: %w", err)
	}
	var ids []uint32
	for _, e := range ents {
		var id uint32
		if _, err := fmt.Sscanf(e.Name(), "%08d.blk", &id); err == nil && e.Name() == fmt.Sprintf("%08d.blk", id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// file returns the open block file id, opening (or creating) it.
func (s *Store) file(id uint32) (*os.File, error) {
	s.fmu.RLock()
	f, ok := s.files[id]
	s.fmu.RUnlock()
	if ok {
		return f, nil
	}
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if f, ok := s.files[id]; ok {
		return f, nil
	}
	flag := os.O_RDWR | os.O_CREATE
	if s.opts.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(s.blockPath(id), flag, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open block: %w", err)
	}
	s.files[id] = f
	return f, nil
}

func (s *Store) lookup(c cid.Cid) (entry, error) {
	b, err := s.get(pieceKey(c))
	if errors.Is(err, leveldb.ErrNotFound) {
		return entry{}, &pieces.NotFoundError{CID: c}
	}
	if err != nil {
		return entry{}, fmt.Errorf("look up %s: %w", c, err)
	}
	return decodeEntry(c, b)
}

// GetPiece returns the bytes of c, checked against the CRC recorded when
// they were put. It implements pieces.Getter.
func (s *Store) GetPiece(ctx context.Context, c cid.Cid) ([]byte, error) {
	return s.ReadPiece(ctx, c, nil)
}

// ReadPiece is GetPiece into buf, which is grown when too small. It
// implements pieces.PieceReader.
func (s *Store) ReadPiece(ctx context.Context, c cid.Cid, buf []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.readPiece(c, buf, true)
}

// readPiece is ReadPiece; keep keeps c from a GC running (see keepRead),
// which a GC's own reads must not.
func (s *Store) readPiece(c cid.Cid, buf []byte, keep bool) ([]byte, error) {
	s.rmu.RLock()
	e, err := s.lookup(c)
	if err != nil {
		s.rmu.RUnlock()
		return nil, err
	}
	if keep {
		s.keepRead(c)
	}
	data, err := s.readEntry(c, e, buf)
	s.rmu.RUnlock()
	if pe := (*PlacedError)(nil); errors.As(err, &pe) {
		s.dropPlaced(pe, e) // never served again, nor announced
	}
	return data, err
}

// readEntry reads piece c where e says it is, into buf, and checks it
// against e's CRC.
func (s *Store) readEntry(c cid.Cid, e entry, buf []byte) ([]byte, error) {
	if e.placed() {
		return s.readPlaced(c, e, buf, 0)
	}
	f, err := s.file(e.block)
	if err != nil {
		return nil, err
	}
	if cap(buf) < int(e.length) {
		buf = make([]byte, e.length)
	}
	buf = buf[:e.length]
	n, err := f.ReadAt(buf, int64(e.offset))
	if n < len(buf) {
		if err == nil || errors.Is(err, io.EOF) {
			return nil, &pieces.CorruptError{CID: c, Reason: fmt.Sprintf("block %s ends before the piece's %d bytes at offset %d", f.Name(), e.length, e.offset)}
		}
		return nil, fmt.Errorf("read %s from %s: %w", c, f.Name(), err)
	}
	if crc32.Checksum(buf, castagnoli) != e.crc {
		return nil, &pieces.CorruptError{CID: c, Reason: fmt.Sprintf("checksum mismatch in %s at offset %d", f.Name(), e.offset)}
	}
	return buf, nil
}

// Has reports whether the store holds c.
func (s *Store) Has(c cid.Cid) (bool, error) {
	ok, err := s.has(pieceKey(c))
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", c, err)
	}
	return ok, nil
}

// PieceSize returns the stored length of c.
func (s *Store) PieceSize(c cid.Cid) (int, error) {
	e, err := s.lookup(c)
	if err != nil {
		return 0, err
	}
	return int(e.length), nil
}

// List calls fn for every piece in the store, in CID byte order, until fn
// returns an error or ctx ends.
func (s *Store) List(ctx context.Context, fn func(c cid.Cid, size int) error) error {
	return s.scan(ctx, prefPiece, func(c cid.Cid, v []byte) error {
		e, err := decodeEntry(c, v)
		if err != nil {
			return err
		}
		return fn(c, int(e.length))
	})
}

// Close closes the index and block files. It is safe to call twice.
func (s *Store) Close() error {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if s.db != nil {
		if err := s.db.Close(); !errors.Is(err, leveldb.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if s.app != nil {
		errs = append(errs, s.app.close())
	}
	s.places.closeAll()
	s.fmu.Lock()
	for id, f := range s.files {
		errs = append(errs, f.Close())
		delete(s.files, id)
	}
	s.fmu.Unlock()
	if s.lock != nil {
		errs = append(errs, s.lock.Close()) // releases the flock
	}
	return errors.Join(errs...)
}
