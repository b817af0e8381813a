package repo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ddc-project/ddc/bucket"
)

// The bucket records a node has seen, newest version of each, in the
// repo's buckets/ folder: one file per bucket named by its ID, holding the
// record's encoding. A node keeps them so that a restart, or a DHT that
// has lost them, never serves an older version than one it has seen.

const bucketsDir = "buckets"

// ErrNoBucket means the repo has no record of that bucket.
var ErrNoBucket = errors.New("no such bucket")

// BucketRecords is the repo's bucket records.
type BucketRecords struct{ path string }

// Buckets returns the bucket records of the repo at path.
func Buckets(path string) (BucketRecords, error) {
	if !IsInitialized(path) {
		return BucketRecords{}, fmt.Errorf("%w at %s (run 'ddc init --repo %s')", ErrNotInitialized, path, path)
	}
	return BucketRecords{path}, nil
}

func (b BucketRecords) file(id bucket.ID) string {
	return filepath.Join(b.path, bucketsDir, id.String())
}

// Keep stores r if it is valid and newer than the version kept; it
// reports whether it did.
func (b BucketRecords) Keep(r bucket.Record) (bool, error) {
	if err := r.Verify(); err != nil {
		return false, err
	}
	if old, err := b.Get(r.Bucket); err == nil && !bucket.Newer(r, old) {
		return false, nil
	} else if err != nil && !errors.Is(err, ErrNoBucket) {
		return false, err
	}
	enc, err := r.Marshal()
	if err != nil {
		return false, err
	}
	dir := filepath.Join(b.path, bucketsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("bucket records: %w", err)
	}
	err = writeFileAtomic(b.file(r.Bucket), enc, 0o600)
	if err == nil {
		err = syncDirOf(b.file(r.Bucket))
	}
	if err != nil {
		return false, fmt.Errorf("bucket records: keep %s: %w", r.Bucket, err)
	}
	return true, nil
}

// Get returns the kept record of id, checked again as it is read.
func (b BucketRecords) Get(id bucket.ID) (bucket.Record, error) {
	enc, err := readFile(b.file(id), fmt.Errorf("%w: %s", ErrNoBucket, id), "bucket records")
	if err != nil {
		return bucket.Record{}, err
	}
	r, err := bucket.ParseRecord(enc)
	if err == nil && r.Bucket != id {
		err = fmt.Errorf("%w: the file of %s holds %s", bucket.ErrBadRecord, id, r.Bucket)
	}
	if err != nil {
		return bucket.Record{}, fmt.Errorf("bucket records: %s: %w", b.file(id), err)
	}
	return r, nil
}

// List returns every kept record, by ID.
func (b BucketRecords) List() ([]bucket.Record, error) {
	ents, err := os.ReadDir(filepath.Join(b.path, bucketsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bucket records: %w", err)
	}
	var out []bucket.Record
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		id, err := bucket.ParseID(e.Name())
		if err != nil {
			continue // not ours
		}
		r, err := b.Get(id)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(x, y bucket.Record) int { return strings.Compare(x.Bucket.String(), y.Bucket.String()) })
	return out, nil
}
