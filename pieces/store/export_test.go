package store

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb"
)

// SetVersion rewrites the format version of the closed store in dir.
func SetVersion(t *testing.T, dir string, v uint64) {
	t.Helper()
	db, err := leveldb.OpenFile(filepath.Join(dir, "index"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Put([]byte(keyVersion), binary.AppendUvarint(nil, v), nil); err != nil {
		t.Fatal(err)
	}
}

// FailNextSync makes the next block sync fail with EIO, as the kernel
// reports lost writeback once, and the ones after succeed.
func FailNextSync(t *testing.T) {
	real := syncData
	var once sync.Once
	syncData = func(f *os.File) error {
		failed := false
		once.Do(func() { failed = true })
		if failed {
			return syscall.EIO
		}
		return real(f)
	}
	t.Cleanup(func() { syncData = real })
}

// DropTagIndexMark makes the closed store in dir look like one from before
// the tag index, with stale entries left behind.
func DropTagIndexMark(t *testing.T, dir string) {
	t.Helper()
	db, err := leveldb.OpenFile(filepath.Join(dir, "index"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Delete([]byte(keyTagIndex), nil); err != nil {
		t.Fatal(err)
	}
	stale := append([]byte{prefTagValue}, make([]byte, 32)...)
	if err := db.Put(append(stale, "stale\x00\x01v\x00\x01"...), nil, nil); err != nil {
		t.Fatal(err)
	}
}

// ClearTags deletes every tag entry of s, as a store from before the tag
// index has none.
func ClearTags(t testing.TB, s *Store) {
	t.Helper()
	s.cmu.Lock()
	defer s.cmu.Unlock()
	b := new(leveldb.Batch)
	err := s.clearTags(context.Background(), b, func(bool) error {
		if b.Len() < reindexBatch {
			return nil
		}
		err := s.writeBatch(b, false)
		b.Reset()
		return err
	})
	if err == nil {
		err = s.write(b)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// DropNoBucket deletes every membership of no bucket from the closed
// store in dir, as a store from before ddc recorded them has none.
func DropNoBucket(t *testing.T, dir string) {
	t.Helper()
	db, err := leveldb.OpenFile(filepath.Join(dir, "index"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it := db.NewIterator(nil, nil)
	defer it.Release()
	b := new(leveldb.Batch)
	for it.Next() {
		k := it.Key()
		if len(k) > 33 && k[0] == prefMember && [32]byte(k[len(k)-32:]) == NoBucket {
			b.Delete(append([]byte(nil), k...))
		}
	}
	if err := db.Write(b, nil); err != nil {
		t.Fatal(err)
	}
}

// DuringRead reads piece c as ReadPiece does, calling during once the
// read has looked c up and before it reads the bytes, and then done with
// them.
func DuringRead(s *Store, c cid.Cid, during func(), done func([]byte)) {
	s.rmu.RLock()
	e, err := s.lookup(c)
	if err != nil {
		s.rmu.RUnlock()
		panic(err)
	}
	during()
	b, err := s.readEntry(c, e, nil)
	s.rmu.RUnlock()
	if err != nil {
		b = nil
	}
	done(b)
}

// WaitDropped waits, 10 s at most, until s no longer indexes c.
func WaitDropped(t *testing.T, s *Store, c cid.Cid) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if has, _ := s.Has(c); !has {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still indexed after 10s", c)
		}
		runtime.Gosched()
	}
}

// SkipPunch leaves the holes of dropped pieces unpunched and recorded,
// as a process killed before it punched them does, until PunchAgain.
func SkipPunch(t *testing.T) {
	skipPunch.Store(true)
	t.Cleanup(PunchAgain)
}

// PunchAgain ends SkipPunch.
func PunchAgain() { skipPunch.Store(false) }

// AfterMark has every GC call fn between its mark and its sweep, until
// the test ends.
func AfterMark(t *testing.T, fn func()) {
	afterMark = fn
	t.Cleanup(func() { afterMark = nil })
}
