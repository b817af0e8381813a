package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"syscall"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// The index's goleveldb handle, and how it survives a full disk.
//
// A failed write leaves goleveldb's journal writer failed for good (its
// error sticks until the journal rotates), so after one the store reopens
// the index before its next write. A reopen closes the handle first, and a
// writable open on a full disk fails part way (it writes a new manifest,
// a table and a journal), so the store reopens only once the disk has
// reopenFree bytes free again: until then the failed handle stays open,
// reads go on, and writes fail with ENOSPC. A store opened on a full disk
// opens its index read-only, the same way. Every use of db holds dbmu for
// reading; a reopen holds it for writing.

var syncWrite = &opt.WriteOptions{Sync: true}

// leftMidOpen reports whether a read-only open of the index failed the
// way it does after a writer was killed while it opened the index:
// goleveldb had begun a new journal and manifest, which only a writable
// open takes up.
func leftMidOpen(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || lerrors.IsCorrupted(err)
}

// recoverIndex opens the index for writing once, and closes it, so that a
// read-only open can read it again: for a reader that finds it left by a
// writer killed as it opened it. It needs the store to itself (the
// exclusive lock, taken for the moment) and a writable directory; when it
// cannot, the reader's open fails as it did. It ends holding the shared
// lock again.
func (s *Store) recoverIndex() error {
	s.lock.Close()
	s.lock = nil
	err := func() error {
		ex, err := lockDir(s.dir, false)
		if err != nil {
			return err
		}
		defer ex.Close()
		db, err := leveldb.OpenFile(filepath.Join(s.dir, "index"), &opt.Options{Filter: filter.NewBloomFilter(10), ErrorIfMissing: true})
		if err != nil {
			return err
		}
		s.log.Warn("recovered the index a process left as it was killed opening it", "store", s.dir)
		return db.Close()
	}()
	lock, lerr := lockDir(s.dir, true)
	s.lock = lock
	return errors.Join(err, lerr)
}

// reopenFree is the free space a reopen of the index waits for.
const reopenFree = 16 << 20

// scanBatch is how many records scan reads under one hold of dbmu.
const scanBatch = 512

func (s *Store) openIndex(readOnly bool) (*leveldb.DB, error) {
	db, err := leveldb.OpenFile(filepath.Join(s.dir, "index"), &opt.Options{
		Filter:         filter.NewBloomFilter(10), // Has of a new CID costs no disk read
		ReadOnly:       readOnly,
		ErrorIfMissing: readOnly,
	})
	if err != nil {
		return nil, fmt.Errorf("open store index %s: %w", s.dir, err)
	}
	return db, nil
}

// openIndexAtStart opens the index as the store is opened: read-only for
// a read-only store, and read-only for now when the disk is too full to
// open it for writing.
func (s *Store) openIndexAtStart() (err error) {
	if s.opts.ReadOnly {
		s.db, err = s.openIndex(true)
		if err != nil && leftMidOpen(err) && s.recoverIndex() == nil {
			s.db, err = s.openIndex(true)
		}
		return err
	}
	if free, ok := s.free(); ok && free < reopenFree {
		if s.db, err = s.openIndex(true); err == nil {
			s.indexErr = fmt.Errorf("disk full at open (%d bytes free)", free)
			s.log.Warn("disk full: the index is open for reading until space is back", "free", free)
		}
		return err
	}
	s.db, err = s.openIndex(false)
	return err
}

// free returns the bytes the store's filesystem has free, if it can tell.
func (s *Store) free() (int64, bool) {
	free, err := freeSpace(s.dir)
	return free, err == nil
}

func (s *Store) get(key []byte) ([]byte, error) {
	s.dbmu.RLock()
	defer s.dbmu.RUnlock()
	return s.db.Get(key, nil)
}

func (s *Store) has(key []byte) (bool, error) {
	s.dbmu.RLock()
	defer s.dbmu.RUnlock()
	return s.db.Has(key, nil)
}

// write applies b durably, reopening the index first if a write failed.
// Called under cmu.
func (s *Store) write(b *leveldb.Batch) error { return s.writeBatch(b, true) }

// writeBatch is write, made durable only when sync is set: a reindex
// syncs once at its end. Called under cmu.
func (s *Store) writeBatch(b *leveldb.Batch, sync bool) error {
	if s.indexErr != nil {
		if err := s.reopenIndex(); err != nil {
			return err
		}
	}
	wo := syncWrite
	if !sync {
		wo = nil
	}
	s.dbmu.RLock()
	err := s.db.Write(b, wo)
	s.dbmu.RUnlock()
	if err != nil && !errors.Is(err, leveldb.ErrClosed) {
		s.indexErr = err
	}
	return err
}

// reopenIndex replaces a handle whose write failed, once the disk has
// room: with a writable one if it opens, else with a read-only one.
// Called under cmu.
func (s *Store) reopenIndex() error {
	if free, ok := s.free(); ok && free < reopenFree {
		return fmt.Errorf("the index cannot be written since %v, and the disk has %d bytes free: %w", s.indexErr, free, syscall.ENOSPC)
	}
	s.dbmu.Lock()
	defer s.dbmu.Unlock()
	if err := s.db.Close(); err != nil && !errors.Is(err, leveldb.ErrClosed) {
		s.log.Debug("closing the failed index", "err", err)
	}
	db, err := s.openIndex(false)
	if err == nil {
		s.log.Info("index reopened after a failed write", "failed", s.indexErr)
		s.db, s.indexErr = db, nil
		return nil
	}
	err = fmt.Errorf("reopening the index, unwritable since %v: %w", s.indexErr, err)
	if ro, rerr := s.openIndex(true); rerr == nil {
		s.db = ro
	} else {
		err = errors.Join(err, rerr)
	}
	return err
}

// scan calls fn for every record whose key is prefix and a CID, in key
// order, until fn returns an error or ctx ends. fn runs without dbmu
// held, so it may use the store.
func (s *Store) scan(ctx context.Context, prefix byte, fn func(c cid.Cid, v []byte) error) error {
	return s.scanKeys(ctx, []byte{prefix}, func(k, v []byte) error {
		c, err := cid.Cast(k[1:])
		if err != nil {
			return fmt.Errorf("%w: key %x: %w", ErrIndexCorrupt, k, err)
		}
		return fn(c, v)
	})
}

// scanKeys calls fn for every record whose key starts with prefix, in key
// order, until fn returns an error or ctx ends; fn runs without dbmu held.
func (s *Store) scanKeys(ctx context.Context, prefix []byte, fn func(k, v []byte) error) error {
	return s.scanRange(ctx, util.BytesPrefix(prefix), fn)
}

// scanRange is scanKeys over the keys of r.
func (s *Store) scanRange(ctx context.Context, r *util.Range, fn func(k, v []byte) error) error {
	type rec struct{ k, v []byte }
	for {
		var batch []rec // grows as needed: most lookups of a piece's buckets find one or none
		s.dbmu.RLock()
		it := s.db.NewIterator(r, nil)
		for len(batch) < scanBatch && it.Next() {
			batch = append(batch, rec{append([]byte(nil), it.Key()...), append([]byte(nil), it.Value()...)})
		}
		it.Release()
		err := it.Error()
		s.dbmu.RUnlock()
		if err != nil {
			return err
		}
		for _, e := range batch {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(e.k, e.v); err != nil {
				return err
			}
		}
		if len(batch) < scanBatch {
			return nil
		}
		r.Start = append(batch[len(batch)-1].k, 0) // the next key after the last one
	}
}
