package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/search"
)

// The tag index. Every descriptor the store holds with searchable tags has
// entries in the index's tag spaces: in each bucket it belongs to, or in
// the space of no bucket (the zero Bucket) when it belongs to none. They
// are written in the commit that stores the descriptor or adds it to a
// bucket, and deleted with the piece. Entry layouts are search's; here
// they get a kind byte and the bucket in front.
const (
	prefTagValue  = 't' // 't' + bucket (32) + search value entry -> nothing
	prefTagNumber = 'n' // 'n' + bucket (32) + search number entry -> nothing
	keyTagIndex   = "i" // uvarint TagIndexVersion, once the index is complete

	// TagIndexVersion is the layout of the tag index this build writes. A
	// store whose index has another, or none, is reindexed when opened.
	TagIndexVersion = 1
)

// NoBucket is the tag space of files in no bucket.
var NoBucket Bucket

// tagged is a descriptor a Tx put, with its searchable tags.
type tagged struct {
	c    cid.Cid
	tags []pieces.Tag
}

// noteTags remembers the searchable tags of descriptor c for indexing at
// commit. A descriptor ddc cannot read (another codec's, or another
// format's) is stored all the same, and simply not indexed.
func (t *Tx) noteTags(c cid.Cid, data []byte) {
	if t.s.opts.NoTagIndex || c.Type() != pieces.CodecDagCBOR {
		return
	}
	p, err := pieces.Decode(c, data)
	if err != nil {
		t.s.log.Debug("descriptor not indexed", "cid", c, "err", err)
		return
	}
	for _, g := range p.Tags {
		if g.Searchable {
			t.tagged = append(t.tagged, tagged{c, p.Tags})
			return
		}
	}
}

func tagKeys(b Bucket, tags []pieces.Tag, c cid.Cid) [][]byte {
	values, numbers := search.Entries(tags, c)
	keys := make([][]byte, 0, len(values)+len(numbers))
	for _, v := range values {
		keys = append(keys, append(append([]byte{prefTagValue}, b[:]...), v...))
	}
	for _, n := range numbers {
		keys = append(keys, append(append([]byte{prefTagNumber}, b[:]...), n...))
	}
	return keys
}

// indexTags adds to batch the entries of descriptors put in one commit:
// into bucket (nil for none) and out of the space of no bucket when they
// join one; a descriptor put again without a bucket keeps the spaces it
// has. Called under cmu.
func (s *Store) indexTags(batch *leveldb.Batch, bucket *Bucket, ds []tagged) error {
	for _, d := range ds {
		if bucket != nil {
			for _, k := range tagKeys(*bucket, d.tags, d.c) {
				batch.Put(k, nil)
			}
			for _, k := range tagKeys(NoBucket, d.tags, d.c) {
				batch.Delete(k)
			}
			continue
		}
		members, err := s.Buckets(d.c)
		if err != nil {
			return err
		}
		if len(members) == 0 {
			for _, k := range tagKeys(NoBucket, d.tags, d.c) {
				batch.Put(k, nil)
			}
		}
	}
	return nil
}

// unindexTags adds to batch the deletion of every tag entry of descriptor
// c, which belongs to members. Called under cmu.
func (s *Store) unindexTags(batch *leveldb.Batch, c cid.Cid, members []Bucket) {
	if c.Type() != pieces.CodecDagCBOR {
		return
	}
	data, err := s.GetPiece(context.Background(), c)
	if err != nil {
		// Its entries stay; a search skips entries of pieces it lacks.
		s.log.Warn("deleting a descriptor whose tags cannot be read", "cid", c, "err", err)
		return
	}
	p, err := pieces.Decode(c, data)
	if err != nil {
		return // never indexed
	}
	for _, b := range append(members, NoBucket) {
		for _, k := range tagKeys(b, p.Tags, c) {
			batch.Delete(k)
		}
	}
}

// Search returns the files of bucket b (NoBucket: of no bucket) that
// match q, in q's order, from after the sort key after (nil: the first),
// at most limit of them; Page.More says whether more follow.
func (s *Store) Search(ctx context.Context, b Bucket, q search.Query, after []byte, limit int) (search.Page, error) {
	if s.tagsStale {
		return search.Page{}, fmt.Errorf("%w: the tag index of %s is missing or of another layout; open the repo for writing (start the node, or run 'ddc repo reindex') to rebuild it", ErrIndexStale, s.dir)
	}
	var page search.Page
	plan := q.Plan(after)
	kind := byte(prefTagValue)
	if plan.Numeric {
		kind = prefTagNumber
	}
	base := append(append([]byte{kind}, b[:]...), plan.Key...)
	r := util.BytesPrefix(base)
	r.Start = append(append([]byte(nil), base...), plan.Start...)
	if plan.End != nil {
		r.Limit = append(append([]byte(nil), base...), plan.End...)
	}
	var buf []byte
	done := errors.New("page full")
	err := s.scanRange(ctx, r, func(k, _ []byte) error {
		at, c, err := plan.Split(k[len(base):])
		if err != nil {
			return fmt.Errorf("%w: %w", ErrIndexCorrupt, err)
		}
		buf, err = s.ReadPiece(ctx, c, buf)
		if errors.Is(err, pieces.ErrNotFound) {
			return nil // deleted while its tags could not be read
		}
		if err != nil {
			return fmt.Errorf("search: read descriptor %s: %w", c, err)
		}
		p, err := pieces.Decode(c, buf)
		if err != nil {
			return fmt.Errorf("search: descriptor %s: %w", c, err)
		}
		if !plan.Emit(q, at, p.Tags, c) {
			return nil
		}
		if len(page.Results) == limit {
			page.More = true
			return done
		}
		page.Results = append(page.Results, search.Result{CID: c, Size: p.ContentSize(), Tags: p.Tags})
		return nil
	})
	if err != nil && !errors.Is(err, done) {
		return search.Page{}, err
	}
	return page, nil
}

// tagIndexCurrent reports whether the tag index is complete and of this
// build's layout.
func (s *Store) tagIndexCurrent() (bool, error) {
	b, err := s.get([]byte(keyTagIndex))
	if errors.Is(err, leveldb.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read tag index version: %w", err)
	}
	v, n := binary.Uvarint(b)
	return n == len(b) && v == TagIndexVersion, nil
}

// reindexBatch is how many index changes a reindex writes at once.
const reindexBatch = 4096

// Reindex rebuilds the tag index from the stored descriptors and returns
// how many it indexed. Commits wait while it runs. It first marks the
// index incomplete, so a reindex cut short runs again at the next open.
func (s *Store) Reindex(ctx context.Context) (int, error) {
	if s.opts.ReadOnly {
		return 0, ErrReadOnly
	}
	if s.opts.NoTagIndex {
		return 0, errors.New("reindex: the store was opened without a tag index")
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	start := time.Now()
	b := new(leveldb.Batch)
	b.Delete([]byte(keyTagIndex))
	if err := s.write(b); err != nil {
		return 0, fmt.Errorf("reindex: %w", err)
	}
	b.Reset()
	flush := func(sync bool) error {
		if b.Len() < reindexBatch && !sync {
			return nil
		}
		err := s.writeBatch(b, sync)
		b.Reset()
		return err
	}
	for _, kind := range []byte{prefTagValue, prefTagNumber} {
		err := s.scanKeys(ctx, []byte{kind}, func(k, _ []byte) error {
			b.Delete(k)
			return flush(false)
		})
		if err != nil {
			return 0, fmt.Errorf("reindex: clear: %w", err)
		}
	}
	n, skipped := 0, 0
	var buf []byte
	prefix := []byte{prefPiece, 1, byte(pieces.CodecDagCBOR)} // CIDv1, the codec fits one varint byte
	err := s.scanKeys(ctx, prefix, func(k, _ []byte) error {
		c, err := cid.Cast(k[1:])
		if err != nil {
			return fmt.Errorf("%w: key %x: %w", ErrIndexCorrupt, k, err)
		}
		if buf, err = s.ReadPiece(ctx, c, buf); err != nil {
			s.log.Warn("reindex: descriptor unreadable, not indexed", "cid", c, "err", err)
			skipped++
			return nil
		}
		p, err := pieces.Decode(c, buf)
		if err != nil {
			s.log.Warn("reindex: descriptor does not decode, not indexed", "cid", c, "err", err)
			skipped++
			return nil
		}
		if len(p.Tags) == 0 {
			return nil
		}
		members, err := s.Buckets(c)
		if err != nil {
			return err
		}
		if len(members) == 0 {
			members = []Bucket{NoBucket}
		}
		for _, m := range members {
			for _, key := range tagKeys(m, p.Tags, c) {
				b.Put(key, nil)
			}
		}
		n++
		return flush(false)
	})
	if err != nil {
		return n, fmt.Errorf("reindex: %w", err)
	}
	b.Put([]byte(keyTagIndex), binary.AppendUvarint(nil, TagIndexVersion))
	if err := flush(true); err != nil {
		return n, fmt.Errorf("reindex: %w", err)
	}
	s.log.Info("tag index rebuilt", "descriptors", n, "skipped", skipped, "took", time.Since(start))
	return n, nil
}

// checkTagIndex reindexes at open a store whose tag index is missing or of
// another layout (a store from before it, or a reindex cut short); a store
// opened without the index drops the mark so that the next open with it
// reindexes.
func (s *Store) checkTagIndex() error {
	if s.opts.NoTagIndex {
		b := new(leveldb.Batch)
		b.Delete([]byte(keyTagIndex))
		s.cmu.Lock()
		defer s.cmu.Unlock()
		return s.write(b)
	}
	ok, err := s.tagIndexCurrent()
	if err != nil || ok {
		return err
	}
	s.log.Info("the tag index is missing or of another layout: rebuilding it")
	_, err = s.Reindex(context.Background())
	return err
}
