package store

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/internal/directio"
)

// How the store's writes fail and go on.
//
// A failed block write (a full disk, an I/O error) or a failed sync may
// take with it bytes that other Txs appended: direct mode writes several
// Txs' pieces in one stage, and the kernel reports lost writeback once, to
// whichever sync comes first. So a failure bumps Store.epoch, and every Tx
// that had bytes pending when it happened fails with its own pieces named,
// rather than index bytes that may be lost. Writes then go on by
// themselves: the next append starts the appender afresh past the damage,
// and once no Tx has bytes pending, the bytes past the last commit are cut
// off (reclaim), so the space a failed put took is given back at once.

// span is a byte range of a block file.
type span struct{ off, n uint64 }

// writable says why no write may start: a closed or read-only store.
// Called under wmu.
func (s *Store) writable() error {
	if s.closed {
		return ErrClosed
	}
	return s.refuse
}

// failWrite records a failed block write or sync: the Txs with bytes
// pending fail, and the appender starts afresh. Called under wmu.
func (s *Store) failWrite(err error) {
	s.epoch++
	s.lost = err
	s.broken = true
	s.log.Error("block write failed; the puts in progress fail, later ones go on", "err", err)
}

// spoiled is the error of a Tx whose bytes a failure may have taken.
func (s *Store) spoiled() error {
	return fmt.Errorf("a block write failed while its pieces were being written, so they may be lost: %w", s.lost)
}

// append writes data at the end of the active block for t, sealing the
// block first when data would take it past the block size. It returns the
// range whose writeback the caller should start, if one is due.
func (s *Store) append(t *Tx, c cid.Cid, data []byte) (entry, *os.File, span, error) {
	crc := crc32.Checksum(data, castagnoli)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	fail := func(err error) (entry, *os.File, span, error) {
		return entry{}, nil, span{}, fmt.Errorf("store piece %s: %w", c, err)
	}
	if err := s.writable(); err != nil {
		return entry{}, nil, span{}, err
	}
	if t.open && t.epoch != s.epoch {
		return fail(s.spoiled())
	}
	if s.broken {
		if err := s.resume(active{block: s.act.block, end: uint64(directio.Pad(int(s.act.end)))}, false); err != nil {
			return fail(fmt.Errorf("writes cannot go on after a failed one: %w", err))
		}
	}
	if !t.open {
		t.open, t.epoch = true, s.epoch
		s.inflight++
	}
	if s.act.end > 0 && s.act.end+uint64(len(data)) > uint64(s.opts.BlockSize) {
		if err := s.seal(); err != nil {
			return fail(err)
		}
	}
	wb, err := s.app.write(data)
	if err != nil {
		if s.app.direct != nil {
			// Staged bytes of other Txs may be lost with this write.
			s.failWrite(err)
		}
		return fail(err)
	}
	e := entry{block: s.act.block, offset: s.act.end, length: uint32(len(data)), crc: crc}
	s.act.end = s.app.end
	return e, s.app.f, wb, nil
}

// seal finishes the active block and starts the next. The old one is
// synced by the Commit of every Tx that wrote to it; the new file's
// directory entry is synced here.
func (s *Store) seal() (err error) {
	defer func() {
		if err != nil { // the appender may be half sealed
			s.failWrite(err)
		}
	}()
	if err := s.app.seal(); err != nil {
		return fmt.Errorf("seal block %s: %w", s.app.f.Name(), err)
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

// reclaim runs under cmu and wmu when no Tx has bytes pending: every byte
// past the last commit belongs to a put that failed or was discarded. It
// is cut off, block files past the committed one are removed, and appends
// go on from the committed end, as reopening the store would do.
func (s *Store) reclaim() {
	if s.act == s.recorded && !s.broken {
		return
	}
	if err := s.resume(s.recorded, true); err != nil {
		s.log.Warn("could not reclaim the bytes of failed puts; the next open will", "err", err)
	}
}

// resume starts the appender afresh at to. With cut, the bytes past to
// are uncommitted and go: block files after to.block are removed and
// to.block is truncated to to.end. Without it, to must not be before the
// active end. Called under wmu; on failure the store stays broken and the
// next append tries again.
func (s *Store) resume(to active, cut bool) error {
	if err := s.app.close(); err != nil {
		s.log.Debug("closing the failed appender", "err", err)
	}
	s.broken = true
	if cut {
		for id := s.act.block; id > to.block; id-- {
			if err := s.drop(id); err != nil {
				return err
			}
		}
	}
	f, err := s.file(to.block)
	if err != nil {
		return err
	}
	if cut {
		if err := f.Truncate(int64(to.end)); err != nil {
			return fmt.Errorf("truncate block %s: %w", f.Name(), err)
		}
	}
	app, err := newAppender(f, to.end, s.opts.DirectIO)
	if err != nil {
		return err
	}
	s.app, s.act, s.broken = app, to, false
	return nil
}

// drop removes the uncommitted block file id.
func (s *Store) drop(id uint32) error {
	s.fmu.Lock()
	if f, ok := s.files[id]; ok {
		f.Close()
		delete(s.files, id)
		s.sealed = deleteFile(s.sealed, f)
	}
	s.fmu.Unlock()
	if err := os.Remove(s.blockPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove uncommitted block: %w", err)
	}
	return syncDir(filepath.Join(s.dir, "blocks"))
}

func deleteFile(fs []*os.File, f *os.File) []*os.File {
	out := fs[:0]
	for _, g := range fs {
		if g != f {
			out = append(out, g)
		}
	}
	return out
}

// SyncWritten makes durable the bytes appends have written to block files
// so far (not those still gathered in a stage), so that a later Commit has
// less to flush. A long Tx calls it now and then while it appends: the
// device then flushes while the data still comes, instead of all at the
// end. It may run concurrently with appends and commits. A failed sync
// fails the Txs with bytes pending, as a failed write does.
func (s *Store) SyncWritten() error {
	s.wmu.Lock()
	if s.writable() != nil || s.broken {
		s.wmu.Unlock()
		return nil // Commit reports it
	}
	files := append(s.sealed, s.app.f)
	s.sealed = nil
	epoch := s.epoch
	s.wmu.Unlock()
	return s.syncFiles(files, epoch)
}

// syncFiles makes the written bytes of files durable for writers of the
// given epoch. The kernel reports a lost writeback once per file, to
// whichever sync comes first; a later sync of the same file succeeds
// although pages are gone. So syncs run one at a time, and a failure
// bumps the epoch before the next sync starts: every Tx that wrote to a
// file before its sync failed fails too, instead of indexing lost bytes.
func (s *Store) syncFiles(files []*os.File, epoch uint64) error {
	s.smu.Lock()
	defer s.smu.Unlock()
	s.wmu.Lock()
	current, spoiled := epoch == s.epoch, s.spoiled()
	s.wmu.Unlock()
	if !current {
		return spoiled
	}
	for _, f := range files {
		if err := syncData(f); err != nil {
			err = fmt.Errorf("sync block %s: %w", f.Name(), err)
			if !errors.Is(err, os.ErrClosed) { // closed: dropped by reclaim, or the store closed
				s.wmu.Lock()
				s.failWrite(err)
				s.wmu.Unlock()
			}
			return err
		}
	}
	return nil
}

// syncData is fdatasync; tests replace it to fail.
var syncData = fdatasync

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
