package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
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

// tagged is a descriptor a Tx put, with its searchable tags and where its
// bytes are.
type tagged struct {
	c   cid.Cid
	p   *pieces.Piece
	val []byte // its tag entries' value
}

// noteTags remembers the tags of descriptor c, stored at e, for indexing
// at commit. A descriptor ddc cannot read (another codec's, or another
// format's) is stored all the same, and simply not indexed.
func (t *Tx) noteTags(c cid.Cid, data []byte, e entry) {
	if t.s.opts.NoTagIndex || c.Type() != pieces.CodecDagCBOR {
		return
	}
	p, err := pieces.Decode(c, data)
	if err != nil {
		t.s.log.Debug("descriptor not indexed", "cid", c, "err", err)
		return
	}
	if slices.ContainsFunc(p.Tags, func(g pieces.Tag) bool { return g.Searchable }) {
		t.tagged = append(t.tagged, tagged{c, p, tagValue(e, p)})
	}
}

// noteStoredTags is noteTags for a descriptor the store already holds.
func (t *Tx) noteStoredTags(c cid.Cid, data []byte) error {
	if t.s.opts.NoTagIndex || c.Type() != pieces.CodecDagCBOR {
		return nil
	}
	e, err := t.s.lookup(c)
	if err != nil {
		return err
	}
	t.noteTags(c, data, e)
	return nil
}

// A tag entry's value is the descriptor's piece entry (where its bytes
// are, and their CRC), then, when they fit in maxInlineTags bytes, the
// file's size and all its tags: a search filters and answers from the
// index alone, without reading the descriptor of each entry it scans.
// Larger tags are read from the descriptor, at the entry, or by CID if it
// has moved since (a repair put a new copy elsewhere).
const maxInlineTags = 512

func tagValue(e entry, p *pieces.Piece) []byte {
	v := binary.AppendUvarint(e.encode(), p.ContentSize())
	v = binary.AppendUvarint(v, uint64(len(p.Tags)))
	for _, t := range p.Tags {
		flag := byte(0)
		if t.Searchable {
			flag = 1
		}
		v = append(v, flag)
		v = binary.AppendUvarint(v, uint64(len(t.Key)))
		v = append(v, t.Key...)
		v = binary.AppendUvarint(v, uint64(len(t.Value)))
		v = append(v, t.Value...)
		if len(v) > entryLen+maxInlineTags {
			return e.encode()
		}
	}
	return v
}

// inlineTags reads the size and tags a tag entry's value holds; ok is
// false when it holds none. The tags' bytes are v's.
func inlineTags(v []byte) (size uint64, tags []pieces.Tag, ok bool) {
	if len(v) <= entryLen {
		return 0, nil, false
	}
	v = v[entryLen:]
	next := func() uint64 {
		x, n := binary.Uvarint(v)
		if n <= 0 {
			v = nil
			return 0
		}
		v = v[n:]
		return x
	}
	size = next()
	count := next()
	if v == nil || count > pieces.MaxTags {
		return 0, nil, false
	}
	tags = make([]pieces.Tag, 0, count)
	for range count {
		if len(v) == 0 {
			return 0, nil, false
		}
		t := pieces.Tag{Searchable: v[0] == 1}
		v = v[1:]
		k := next()
		if v == nil || k > uint64(len(v)) {
			return 0, nil, false
		}
		t.Key, v = string(v[:k]), v[k:]
		n := next()
		if v == nil || n > uint64(len(v)) {
			return 0, nil, false
		}
		t.Value, v = v[:n:n], v[n:]
		tags = append(tags, t)
	}
	return size, tags, len(v) == 0
}

// tagKeys returns the keys of the tag entries of descriptor c in bucket b.
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
// into the buckets the commit makes them members of, and out of the space
// of no bucket when they join one; a descriptor put again in no bucket
// keeps the spaces it has. Called under cmu.
func (s *Store) indexTags(batch *leveldb.Batch, members []member, ds []tagged) error {
	joins := make(map[string][]Bucket)
	for _, m := range members {
		if m.b != NoBucket && m.c.Type() == pieces.CodecDagCBOR {
			joins[m.c.KeyString()] = append(joins[m.c.KeyString()], m.b)
		}
	}
	for _, d := range ds {
		if in := joins[d.c.KeyString()]; len(in) > 0 {
			for _, b := range in {
				for _, k := range tagKeys(b, d.p.Tags, d.c) {
					batch.Put(k, d.val)
				}
			}
			for _, k := range tagKeys(NoBucket, d.p.Tags, d.c) {
				batch.Delete(k)
			}
			continue
		}
		members, err := s.Buckets(d.c)
		if err != nil {
			return err
		}
		if len(members) == 0 {
			for _, k := range tagKeys(NoBucket, d.p.Tags, d.c) {
				batch.Put(k, d.val)
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
	data, err := s.readPiece(c, nil, false) // a GC drops it: its read keeps nothing
	if err != nil {
		// Its entries cannot be named: find them by their CID, the end of
		// every entry's key. Slow, and as rare as a corrupt descriptor.
		s.log.Warn("deleting a descriptor whose tags cannot be read: scanning the tag index for its entries", "cid", c, "err", err)
		for _, kind := range []byte{prefTagValue, prefTagNumber} {
			err := s.scanKeys(context.Background(), []byte{kind}, func(k, _ []byte) error {
				if bytes.HasSuffix(k, c.Bytes()) {
					batch.Delete(k)
				}
				return nil
			})
			if err != nil {
				s.log.Warn("scanning the tag index", "cid", c, "err", err)
			}
		}
		return
	}
	p, err := pieces.DecodeChecked(c, data) // stored, so Decode accepted it once
	if err != nil {
		return // never indexed
	}
	if len(p.Tags) == 0 {
		return
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
	err := s.scanRange(ctx, r, func(k, v []byte) error {
		at, c, err := plan.Split(k[len(base):])
		if err != nil {
			return fmt.Errorf("%w: %w", ErrIndexCorrupt, err)
		}
		size, tags, ok := inlineTags(v)
		if !ok {
			buf, err = s.readDescriptor(ctx, c, v, buf)
			if errors.Is(err, pieces.ErrNotFound) {
				return nil // deleted while its tags could not be read
			}
			if err != nil {
				return fmt.Errorf("search: read descriptor %s: %w", c, err)
			}
			p, err := pieces.DecodeChecked(c, buf)
			if err != nil {
				return fmt.Errorf("search: descriptor %s: %w", c, err)
			}
			size, tags = p.ContentSize(), p.Tags
		}
		if !plan.Emit(q, at, tags, c) {
			return nil
		}
		if len(page.Results) == limit {
			page.More = true
			return done
		}
		page.Results = append(page.Results, search.Result{CID: c, Size: size, Tags: tags})
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
	if err := s.clearTags(ctx, b, flush); err != nil {
		return 0, fmt.Errorf("reindex: clear: %w", err)
	}
	// Descriptors come in CID order with where they are, a chunk at a
	// time; the chunk's bucket memberships come from one range scan (they
	// are in CID order too) rather than a lookup each.
	n, skipped := 0, 0
	type found struct {
		c   cid.Cid
		loc []byte
	}
	var chunk []found
	index := func() error {
		if len(chunk) == 0 {
			return nil
		}
		members, err := s.membersOf(ctx, chunk[0].c, chunk[len(chunk)-1].c)
		if err != nil {
			return err
		}
		// Reading and decoding run on every core; the writes stay in order.
		out := make([]indexed, len(chunk))
		var wg sync.WaitGroup
		workers := runtime.GOMAXPROCS(0)
		for w := range workers {
			wg.Go(func() {
				var buf []byte
				for i := w; i < len(chunk); i += workers {
					buf, out[i] = s.indexOne(ctx, chunk[i].c, chunk[i].loc, members, buf)
				}
			})
		}
		wg.Wait()
		for i, o := range out {
			if o.err != nil {
				s.log.Warn("reindex: descriptor not indexed", "cid", chunk[i].c, "err", o.err)
				skipped++
				continue
			}
			if o.keys == nil {
				continue
			}
			for _, key := range o.keys {
				b.Put(key, o.val)
			}
			n++
			if err := flush(false); err != nil {
				return err
			}
		}
		chunk = chunk[:0]
		return nil
	}
	prefix := []byte{prefPiece, 1, byte(pieces.CodecDagCBOR)} // CIDv1, the codec fits one varint byte
	err := s.scanKeys(ctx, prefix, func(k, v []byte) error {
		c, err := cid.Cast(k[1:])
		if err != nil || len(v) != entryLen {
			return fmt.Errorf("%w: piece record %x", ErrIndexCorrupt, k)
		}
		if chunk = append(chunk, found{c, v}); len(chunk) == reindexBatch {
			return index()
		}
		return nil
	})
	if err == nil {
		err = index()
	}
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

// readDescriptor reads descriptor c at the entry a tag entry or a piece
// record holds, into buf; where its bytes fail their CRC there (it moved,
// or the entry is stale), it reads c as any piece is read, by its CID.
func (s *Store) readDescriptor(ctx context.Context, c cid.Cid, loc, buf []byte) ([]byte, error) {
	if e, err := decodeEntry(c, loc); err == nil {
		if b, err := s.readEntry(c, e, buf); err == nil {
			return b, nil
		}
	}
	return s.ReadPiece(ctx, c, buf)
}

// membersOf returns the buckets of every piece from first to last in CID
// order, by the piece's CID key; membership of no bucket is left out.
func (s *Store) membersOf(ctx context.Context, first, last cid.Cid) (map[string][]Bucket, error) {
	r := &util.Range{
		Start: append([]byte{prefMember}, first.Bytes()...),
		Limit: append(append([]byte{prefMember}, last.Bytes()...), bytes.Repeat([]byte{0xff}, len(Bucket{})+1)...),
	}
	out := make(map[string][]Bucket)
	err := s.scanRange(ctx, r, func(k, _ []byte) error {
		if len(k) < 1+len(Bucket{})+2 {
			return fmt.Errorf("%w: bucket membership key %x", ErrIndexCorrupt, k)
		}
		cb := k[1 : len(k)-len(Bucket{})]
		if b := Bucket(k[len(k)-len(Bucket{}):]); b != NoBucket { // the space of no bucket is for files in none else
			out[string(cb)] = append(out[string(cb)], b)
		}
		return nil
	})
	return out, err
}

// indexed is what a reindex writes for one descriptor: keys with one
// value; none for a descriptor without tags.
type indexed struct {
	keys [][]byte
	val  []byte
	err  error
}

// indexOne reads descriptor c at loc and returns its tag entries in the
// buckets members gives it (none: no bucket).
func (s *Store) indexOne(ctx context.Context, c cid.Cid, loc []byte, members map[string][]Bucket, buf []byte) ([]byte, indexed) {
	buf, err := s.readDescriptor(ctx, c, loc, buf)
	if err != nil {
		return buf, indexed{err: err}
	}
	p, err := pieces.Decode(c, buf)
	if err != nil || len(p.Tags) == 0 {
		return buf, indexed{err: err}
	}
	e, err := decodeEntry(c, loc)
	if err != nil {
		return buf, indexed{err: err}
	}
	in := members[c.KeyString()]
	if len(in) == 0 {
		in = []Bucket{NoBucket}
	}
	var keys [][]byte
	for _, m := range in {
		keys = append(keys, tagKeys(m, p.Tags, c)...)
	}
	return buf, indexed{keys: keys, val: tagValue(e, p)}
}

// clearTags adds the deletion of every tag entry to b, flushing as it
// fills. Called under cmu.
func (s *Store) clearTags(ctx context.Context, b *leveldb.Batch, flush func(sync bool) error) error {
	for _, kind := range []byte{prefTagValue, prefTagNumber} {
		err := s.scanKeys(ctx, []byte{kind}, func(k, _ []byte) error {
			b.Delete(k)
			return flush(false)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
