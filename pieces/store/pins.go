package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb"

	"github.com/ddc-project/ddc/pieces"
)

// Complete reports whether the store holds every piece of the DAG under
// root; the error names the first piece it lacks.
func (s *Store) Complete(ctx context.Context, root cid.Cid) error {
	seen := make(map[string]struct{})
	first := func(c cid.Cid) bool {
		if _, ok := seen[c.KeyString()]; ok {
			return false
		}
		seen[c.KeyString()] = struct{}{}
		return true
	}
	var n int
	return s.walkDAG(ctx, []cid.Cid{root}, first, func(c cid.Cid) error { return &pieces.NotFoundError{CID: c} }, true, &n)
}

// Pin makes root, which the store must hold whole, a root the user asked
// to keep: GC keeps it and every piece under it. The error names the
// first piece the store lacks.
func (s *Store) Pin(ctx context.Context, root cid.Cid) error {
	release := s.Hold(root) // a GC meanwhile keeps what Complete found
	defer release()
	if err := s.Complete(ctx, root); err != nil {
		return fmt.Errorf("pin %s: %w", root, err)
	}
	tx := s.Begin()
	tx.Pin(root)
	return tx.Commit()
}

// syncIndex makes every index write so far durable.
func (s *Store) syncIndex() error {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	b := new(leveldb.Batch)
	b.Put([]byte(keyStats), s.st.encode())
	return s.write(b)
}

// Pins calls fn for every pinned root with the time it was pinned.
func (s *Store) Pins(ctx context.Context, fn func(c cid.Cid, pinned time.Time) error) error {
	return s.scan(ctx, prefPin, func(c cid.Cid, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("%w: pin of %s has %d bytes, want 8", ErrIndexCorrupt, c, len(v))
		}
		return fn(c, time.Unix(0, int64(binary.BigEndian.Uint64(v))))
	})
}

// Pinned reports whether c is pinned.
func (s *Store) Pinned(c cid.Cid) (bool, error) {
	ok, err := s.has(pinKey(c))
	if err != nil {
		return false, fmt.Errorf("look up the pin of %s: %w", c, err)
	}
	return ok, nil
}

// Unpin removes the pin of c; the pieces stay until deleted.
func (s *Store) Unpin(c cid.Cid) error {
	if s.opts.ReadOnly {
		return ErrReadOnly
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	b := new(leveldb.Batch)
	b.Delete(pinKey(c))
	if err := s.write(b); err != nil {
		return fmt.Errorf("unpin %s: %w", c, err)
	}
	return nil
}
