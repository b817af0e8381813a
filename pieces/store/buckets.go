package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb"
)

// Bucket is a bucket's 32-byte ID. The store records which buckets a piece
// and a file belong to; what a bucket is, and who may read it, is the
// bucket package's business.
type Bucket [32]byte

// InBucket makes the pieces t puts from now on, and the roots it pins,
// members of bucket b at Commit: a piece may belong to several buckets,
// and putting it again into another adds that one.
func (t *Tx) InBucket(b Bucket) { t.bucket = &b }

// Buckets lists the buckets piece c belongs to; none for a piece put
// without a bucket.
func (s *Store) Buckets(c cid.Cid) ([]Bucket, error) {
	out, _, err := s.Reach(c)
	return out, err
}

// Reach says what piece c was put or fetched for: the buckets it belongs
// to, and whether it belongs to no bucket too (none: put or fetched
// outside any bucket). A piece stored before ddc recorded membership of
// no bucket has neither; one not stored has neither either.
func (s *Store) Reach(c cid.Cid) (buckets []Bucket, none bool, err error) {
	prefix := append([]byte{prefMember}, c.Bytes()...)
	err = s.scanKeys(context.Background(), prefix, func(k, _ []byte) error {
		if len(k) != len(prefix)+len(Bucket{}) {
			return fmt.Errorf("%w: bucket membership key %x of %s", ErrIndexCorrupt, k, c)
		}
		if b := Bucket(k[len(prefix):]); b != NoBucket {
			buckets = append(buckets, b)
		} else {
			none = true
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("look up the buckets of %s: %w", c, err)
	}
	return buckets, none, nil
}

// InBucketFile reports whether root was put into, or fetched for, bucket b.
func (s *Store) InBucketFile(b Bucket, root cid.Cid) (bool, error) {
	ok, err := s.has(bucketKey(b, root))
	if err != nil {
		return false, fmt.Errorf("look up %s in a bucket: %w", root, err)
	}
	return ok, nil
}

// BucketFiles calls fn for every file root of bucket b with the time it
// was added, in CID byte order, until fn returns an error or ctx ends.
func (s *Store) BucketFiles(ctx context.Context, b Bucket, fn func(root cid.Cid, added time.Time) error) error {
	prefix := append([]byte{prefBucket}, b[:]...)
	return s.scanKeys(ctx, prefix, func(k, v []byte) error {
		c, err := cid.Cast(k[len(prefix):])
		if err != nil || len(v) != 8 || !bytes.HasPrefix(k, prefix) {
			return fmt.Errorf("%w: bucket file record %x", ErrIndexCorrupt, k)
		}
		return fn(c, time.Unix(0, int64(binary.BigEndian.Uint64(v))))
	})
}

// Unroot makes root, kept for bucket b, cache: its record as a file of
// b and its pin go, and GC or the quota may take it once nothing else
// keeps it. What a bucket's replication no longer asks of this node.
func (s *Store) Unroot(b Bucket, root cid.Cid) error {
	if s.opts.ReadOnly {
		return ErrReadOnly
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	batch := new(leveldb.Batch)
	batch.Delete(bucketKey(b, root))
	batch.Delete(pinKey(root))
	batch.Put(cacheKey(root), binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano())))
	if err := s.write(batch); err != nil {
		return fmt.Errorf("unroot %s of bucket %x: %w", root, b[:4], err)
	}
	return nil
}

// EachBucketFile calls fn for every file root kept for a bucket, of any
// bucket, in key order, until fn returns an error or ctx ends.
func (s *Store) EachBucketFile(ctx context.Context, fn func(b Bucket, root cid.Cid) error) error {
	return s.scanKeys(ctx, []byte{prefBucket}, func(k, _ []byte) error {
		var b Bucket
		if len(k) <= 1+len(b) {
			return fmt.Errorf("%w: bucket file key %x", ErrIndexCorrupt, k)
		}
		copy(b[:], k[1:])
		c, err := cid.Cast(k[1+len(b):])
		if err != nil {
			return fmt.Errorf("%w: bucket file key %x: %w", ErrIndexCorrupt, k, err)
		}
		return fn(b, c)
	})
}
