package repo

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ddc-project/ddc/bucket"
)

// The names a node keeps (its own, and those of the buckets it holds),
// newest version of each, in the repo's names/ folder: one file per name
// (the hex of its bucket.NameID) holding the record's encoding. The node
// republishes them, and a restart, or a DHT that has lost them, never
// serves an older version than one it has seen. The history behind each
// is in the store, as pieces its records' prev links name.

const namesDir = "names"

// ErrNoName means the repo keeps no record of that name.
var ErrNoName = errors.New("no record of that name")

// NameHeads is the repo's kept name records.
type NameHeads struct{ path string }

// Names returns the kept name records of the repo at path.
func Names(path string) (NameHeads, error) {
	if !IsInitialized(path) {
		return NameHeads{}, fmt.Errorf("%w at %s (run 'ddc init --repo %s')", ErrNotInitialized, path, path)
	}
	return NameHeads{path}, nil
}

func (h NameHeads) file(id bucket.NameID) string {
	return filepath.Join(h.path, namesDir, hex.EncodeToString(id[:]))
}

// Keep stores r if it is valid and newer than the version kept; it
// reports whether it did.
func (h NameHeads) Keep(r bucket.NameRecord) (bool, error) {
	if err := r.Verify(time.Now()); err != nil {
		return false, err
	}
	id := bucket.NameIDOf(r.Scope(), r.Name)
	if old, err := h.Get(id); err == nil && !bucket.NewerName(r, old) {
		return false, nil
	} else if err != nil && !errors.Is(err, ErrNoName) {
		return false, err
	}
	enc, err := r.Marshal()
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Join(h.path, namesDir), 0o700); err != nil {
		return false, fmt.Errorf("name records: %w", err)
	}
	err = writeFileAtomic(h.file(id), enc, 0o600)
	if err == nil {
		err = syncDirOf(h.file(id))
	}
	if err != nil {
		return false, fmt.Errorf("name records: keep %q of %s: %w", r.Name, r.Scope(), err)
	}
	return true, nil
}

// Get returns the kept record of id, checked again as it is read.
func (h NameHeads) Get(id bucket.NameID) (bucket.NameRecord, error) {
	enc, err := readFile(h.file(id), fmt.Errorf("%w (%x)", ErrNoName, id[:6]), "name records")
	if err != nil {
		return bucket.NameRecord{}, err
	}
	r, err := bucket.ParseNameRecord(enc, time.Now())
	if err == nil && bucket.NameIDOf(r.Scope(), r.Name) != id {
		err = fmt.Errorf("%w: the file of %x holds %q of %s", bucket.ErrBadNameRecord, id[:6], r.Name, r.Scope())
	}
	if err != nil {
		return bucket.NameRecord{}, fmt.Errorf("name records: %s: %w", h.file(id), err)
	}
	return r, nil
}

// List returns every kept record.
func (h NameHeads) List() ([]bucket.NameRecord, error) {
	ents, err := os.ReadDir(filepath.Join(h.path, namesDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("name records: %w", err)
	}
	var out []bucket.NameRecord
	for _, e := range ents {
		b, err := hex.DecodeString(e.Name())
		if strings.HasPrefix(e.Name(), ".") || err != nil || len(b) != len(bucket.NameID{}) {
			continue // not ours
		}
		r, err := h.Get(bucket.NameID(b))
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
