package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/dht"
	"github.com/ddc-project/ddc/exchange"
	"github.com/ddc-project/ddc/node/repo"
)

// Bucket record freshness, each with why.
const (
	// DefaultRecordTTL is how long a bucket record counts as current
	// after a lookup of the cluster's DHT found nothing newer: the bound
	// within which every holder refuses strangers once `bucket set
	// --private` has reached the DHT. Records in use are looked up again
	// before they expire, so a transfer never waits on one.
	DefaultRecordTTL = time.Minute
	// recordLookupTimeout bounds one lookup of a record.
	recordLookupTimeout = 15 * time.Second
	// recordWait is how long a request of a peer waits for a lookup of a
	// record it needs; past it the holder answers busy, and the peer
	// asks again after a back-off while the lookup goes on.
	recordWait = time.Second
)

// errCannotTell means the holder has no current record of a bucket, so
// it cannot tell whether the bucket is still public.
var errCannotTell = errors.New("cannot tell whether the bucket is public")

// records caches the bucket records the node knows, newest version of
// each, and when the cluster's DHT last confirmed each is current. The
// access rule reads them for every piece it serves: a record that says
// public counts only while current (see current); anything else the rule
// needs of a record (its owner, its cluster) never changes between
// versions.
type records struct {
	ctx    context.Context // lookups end with it
	wg     sync.WaitGroup  // lookups running
	repo   string
	ttl    time.Duration
	lookup func(ctx context.Context, id bucket.ID) (bucket.Record, error) // the newest in the DHT; wraps dht.ErrNoRecord when it has none
	owned  func(bucket.PublicKey) bool                                    // the repo holds this owner's key
	log    *slog.Logger

	mu sync.Mutex
	m  map[bucket.ID]*recEntry
}

type recEntry struct {
	rec     bucket.Record
	owned   bool          // this node's repo holds the owner's key: the node's copy is the owner's own
	checked time.Time     // when a lookup last found nothing newer; zero: never
	used    time.Time     // when the access rule last needed it current
	lookup  chan struct{} // closed when the lookup running ends; nil when none runs
	failed  error         // why the last lookup failed
}

// get returns a record of id, from the cache or the repo: any version,
// for what does not change between versions.
func (rs *records) get(id bucket.ID) (bucket.Record, bool) {
	e := rs.entry(id)
	if e == nil {
		return bucket.Record{}, false
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return e.rec, e.rec.Seq > 0 // none yet in an entry a lookup is to fill
}

// entry returns the cache entry of id, loading the repo's record into the
// cache when there is none; nil when neither has one.
func (rs *records) entry(id bucket.ID) *recEntry {
	rs.mu.Lock()
	e := rs.m[id]
	rs.mu.Unlock()
	if e != nil {
		return e
	}
	bs, err := repo.Buckets(rs.repo)
	if err != nil {
		return nil
	}
	r, err := bs.Get(id)
	if err != nil {
		return nil
	}
	return rs.put(r)
}

// put caches r unless a newer record of its bucket is cached, and
// returns the entry. A newer version keeps the time the older was last
// confirmed: versions only move forward.
func (rs *records) put(r bucket.Record) *recEntry {
	owned := rs.owned != nil && rs.owned(r.Owner)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.m == nil {
		rs.m = make(map[bucket.ID]*recEntry)
	}
	e := rs.m[r.Bucket]
	if e == nil {
		e = &recEntry{rec: r, owned: owned}
		rs.m[r.Bucket] = e
	} else if bucket.Newer(r, e.rec) {
		e.rec = r
	}
	return e
}

// offer takes a record another node sent or the DHT gave: the repo keeps
// it, and the cache serves it, when it is newer than what they have.
func (rs *records) offer(r bucket.Record) error {
	bs, err := repo.Buckets(rs.repo)
	if err != nil {
		return err
	}
	if _, err := bs.Keep(r); err != nil {
		return err
	}
	rs.put(r)
	return nil
}

// current returns the record of id for an access decision. A private
// record is returned as it is: the rule then wants the owner or a grant,
// whatever a newer version says. A public one is returned only while
// current: when it is not, current looks it up in the DHT and waits
// for the lookup while ctx allows; when it cannot tell (the lookup is
// still running, or failed), it says so with an error wrapping
// errCannotTell (and exchange.ErrBusy while a lookup runs). A record the
// repo has none of is looked up the same way.
func (rs *records) current(ctx context.Context, id bucket.ID) (bucket.Record, error) {
	e := rs.entry(id)
	if e == nil {
		e = rs.placeholder(id)
	}
	rs.mu.Lock()
	e.used = time.Now()
	rec, known := e.rec, e.rec.Seq > 0
	fresh := e.owned || (!e.checked.IsZero() && time.Since(e.checked) < rs.ttl)
	rs.mu.Unlock()
	if known && (rec.Private || fresh) {
		if !fresh {
			rs.refresh(id, e)
		}
		return rec, nil
	}
	done := rs.refresh(id, e)
	select {
	case <-done:
	case <-ctx.Done():
		return rec, fmt.Errorf("bucket %s: %w: %w", id, errCannotTell, exchange.ErrBusy)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	switch {
	case e.rec.Seq == 0:
		return e.rec, fmt.Errorf("bucket %s: %w: no record of it: %w", id, errCannotTell, e.failed)
	case e.failed != nil && !e.rec.Private:
		return e.rec, fmt.Errorf("bucket %s: %w: %w", id, errCannotTell, e.failed)
	}
	return e.rec, nil
}

// learn looks up, in the background, the record of a bucket the node
// has none of: one its store now holds pieces of.
func (rs *records) learn(id bucket.ID) {
	if rs.entry(id) == nil {
		rs.refresh(id, rs.placeholder(id))
	}
}

// placeholder is an entry for a bucket with no record yet, for a lookup
// to fill.
func (rs *records) placeholder(id bucket.ID) *recEntry {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.m == nil {
		rs.m = make(map[bucket.ID]*recEntry)
	}
	if e := rs.m[id]; e != nil {
		return e
	}
	e := &recEntry{}
	rs.m[id] = e
	return e
}

// refresh starts a lookup of id's record unless one runs, and returns
// the channel closed when it ends.
func (rs *records) refresh(id bucket.ID, e *recEntry) <-chan struct{} {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if e.lookup != nil {
		return e.lookup
	}
	done := make(chan struct{})
	e.lookup = done
	rs.wg.Go(func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(rs.ctx, recordLookupTimeout)
		defer cancel()
		started := time.Now()
		found, err := rs.lookup(ctx, id)
		if err == nil {
			if err = rs.offer(found); err != nil {
				rs.log.Warn("keep bucket record", "bucket", id, "err", err)
				err = nil // the cache has it
				rs.put(found)
			}
		} else if errors.Is(err, dht.ErrNoRecord) {
			err = nil // asked who would have one: nothing newer than ours exists
		}
		rs.mu.Lock()
		defer rs.mu.Unlock()
		e.lookup, e.failed = nil, err
		if err == nil {
			e.checked = started
		} else {
			rs.log.Info("bucket record lookup failed", "bucket", id, "err", err)
		}
	})
	return done
}

// keepCurrent looks up again, before they expire, the records the access
// rule used within the last TTL, so a transfer in progress never waits
// on a lookup; until ctx ends.
func (rs *records) keepCurrent(ctx context.Context) {
	t := time.NewTicker(max(rs.ttl/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		var due []bucket.ID
		rs.mu.Lock()
		for id, e := range rs.m {
			if !e.owned && now.Sub(e.used) < rs.ttl && now.Sub(e.checked) > rs.ttl/2 {
				due = append(due, id)
			}
		}
		rs.mu.Unlock()
		for _, id := range due {
			if e := rs.entry(id); e != nil {
				rs.refresh(id, e)
			}
		}
	}
}
