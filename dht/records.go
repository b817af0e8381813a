package dht

import (
	"context"
	"errors"
	"fmt"

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

// GetBucketRecord finds the newest valid record of bucket id in either
// table. With first, each table's lookup ends at the first valid record it
// finds instead of asking every close peer: quick, but possibly not the
// newest version.
func (d *DHT) GetBucketRecord(ctx context.Context, id bucket.ID, first bool) (bucket.Record, error) {
	key := bucket.RecordKey(id)
	var best bucket.Record
	found := false
	var errs []error
	var opts []routing.Option
	if first {
		opts = append(opts, kaddht.Quorum(1))
	}
	for _, t := range d.tables() {
		b, err := t.kad.GetValue(ctx, key, opts...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s dht: %w", t.name, err))
			continue
		}
		r, err := bucket.ParseRecord(b)
		if err != nil || r.Bucket != id {
			errs = append(errs, fmt.Errorf("%s dht: %w", t.name, err))
			continue
		}
		if !found || bucket.Newer(r, best) {
			best, found = r, true
		}
	}
	if !found {
		return best, fmt.Errorf("bucket %s: no record found: %w", id, errors.Join(errs...))
	}
	return best, nil
}
