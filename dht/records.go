package dht

import (
	"context"
	"errors"
	"fmt"
	"sync"

	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/ddc-project/ddc/bucket"
)

// PutBucketRecord publishes a signed bucket record in each table that has
// peers. Every node that stores it checks it first (bucket.RecordValidator
// under the DHT's "ddcb" namespace), and keeps an older version only until
// a newer one arrives.
func (d *DHT) PutBucketRecord(ctx context.Context, r bucket.Record) error {
	b, err := r.Marshal()
	if err != nil {
		return err
	}
	if err := r.Verify(); err != nil {
		return err
	}
	key := bucket.RecordKey(r.Bucket)
	var errs []error
	active := 0
	for _, t := range d.tables() {
		if t.kad.RoutingTable().Size() == 0 {
			continue
		}
		active++
		if err := t.kad.PutValue(ctx, key, b); err != nil {
			errs = append(errs, fmt.Errorf("%s dht: %w", t.name, err))
		}
	}
	switch {
	case active == 0:
		return fmt.Errorf("publish bucket %s: %w", r.Bucket, ErrNoPeers)
	case len(errs) == active:
		return fmt.Errorf("publish bucket %s: %w", r.Bucket, errors.Join(errs...))
	}
	return nil
}

// ErrNoRecord means a lookup that asked the peers closest to a bucket's
// key, and none had a record of it.
var ErrNoRecord = errors.New("no record in the DHT")

// GetBucketRecord finds the newest valid record of bucket id in either
// table. With first, each table's lookup ends at the first valid record it
// finds instead of asking every close peer: quick, but possibly not the
// newest version. When no table found one and a lookup got as far as the
// closest peers, the error wraps ErrNoRecord.
func (d *DHT) GetBucketRecord(ctx context.Context, id bucket.ID, first bool) (bucket.Record, error) {
	key := bucket.RecordKey(id)
	var opts []routing.Option
	if first {
		opts = append(opts, kaddht.Quorum(1))
	}
	tables := d.tables()
	answers := make([]answer[bucket.Record], len(tables))
	var wg sync.WaitGroup
	for i, t := range tables {
		wg.Go(func() {
			a := &answers[i]
			a.looked = t.kad.RoutingTable().Size() > 0
			b, err := t.getValue(ctx, key, first, opts...) // a table without peers still gives its own store's copy
			if err == nil {
				if a.r, err = bucket.ParseRecord(b); err == nil && a.r.Bucket != id {
					err = fmt.Errorf("%w: a record of %s under the key of %s", bucket.ErrBadRecord, a.r.Bucket, id)
				}
			}
			if err != nil {
				a.err = fmt.Errorf("%s dht: %w", t.name, err)
			}
		})
	}
	wg.Wait()
	return newest(ctx, answers, bucket.Newer, "bucket "+id.String())
}

// answer is one table's reply to a lookup of versioned records.
type answer[R any] struct {
	r      R
	err    error
	looked bool // the table had peers to ask
}

// newest picks the newest of the tables' answers about what. When none
// found one and a lookup got as far as the closest peers, the error wraps
// ErrNoRecord.
func newest[R any](ctx context.Context, answers []answer[R], newer func(a, b R) bool, what string) (R, error) {
	var best R
	found, completed := false, false
	var errs []error
	for _, a := range answers {
		if a.err != nil {
			errs = append(errs, a.err)
			completed = completed || (a.looked && errors.Is(a.err, routing.ErrNotFound))
			continue
		}
		if !found || newer(a.r, best) {
			best, found = a.r, true
		}
	}
	switch {
	case found:
		return best, nil
	case completed && ctx.Err() == nil:
		return best, fmt.Errorf("%s: %w (%w)", what, ErrNoRecord, errors.Join(errs...))
	}
	return best, fmt.Errorf("%s: no record found: %w", what, errors.Join(errs...))
}

// getValue is the table's GetValue; with first, the first valid value
// any peer gives, without waiting for the lookup to go on (kad-dht's
// GetValue with a quorum of one waits for a second answer, which peers
// that have left hold up for their dial timeouts).
func (t table) getValue(ctx context.Context, key string, first bool, opts ...routing.Option) ([]byte, error) {
	if !first {
		return t.kad.GetValue(ctx, key, opts...)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	vals, err := t.kad.SearchValue(ctx, key, opts...)
	if err != nil {
		return nil, err
	}
	v, ok := <-vals
	if !ok {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, routing.ErrNotFound
	}
	cancel()
	for range vals { // until the search has seen the cancel
	}
	return v, nil
}
