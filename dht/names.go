package dht

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ddc-project/ddc/bucket"
)

// PutName publishes a signed name record in each table that has peers.
// Every node that stores it checks it first (bucket.NameValidator under
// the "ddcn" namespace) and refuses one older than what it has.
func (d *DHT) PutName(ctx context.Context, r bucket.NameRecord) error {
	b, err := r.Marshal()
	if err != nil {
		return err
	}
	if err := r.Verify(time.Now()); err != nil {
		return err
	}
	key := bucket.NameIDOf(r.Scope(), r.Name).Key()
	var mu sync.Mutex
	var errs []error
	active := 0
	var wg sync.WaitGroup
	for _, t := range d.tables() {
		if t.kad.RoutingTable().Size() == 0 {
			continue
		}
		active++
		wg.Go(func() {
			if err := t.kad.PutValue(ctx, key, b); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s dht: %w", t.name, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	switch {
	case active == 0:
		return fmt.Errorf("publish name %q of %s: %w", r.Name, r.Scope(), ErrNoPeers)
	case len(errs) == active:
		return fmt.Errorf("publish name %q of %s: %w", r.Name, r.Scope(), errors.Join(errs...))
	}
	return nil
}

// GetName finds the newest valid record of the name id in either table.
// With first, each table's lookup ends at the first valid record a peer
// gives (quick, but possibly not the newest version); without, it asks
// every close peer. When no table found one and a lookup got as far as
// the closest peers, the error wraps ErrNoRecord.
func (d *DHT) GetName(ctx context.Context, id bucket.NameID, first bool) (bucket.NameRecord, error) {
	key := id.Key()
	tables := d.tables()
	answers := make([]answer[bucket.NameRecord], len(tables))
	var wg sync.WaitGroup
	if first {
		// The first valid answer of either table ends both lookups.
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var once sync.Once
		for i, t := range tables {
			wg.Go(func() {
				a := &answers[i]
				a.looked = t.kad.RoutingTable().Size() > 0
				a.r, a.err = t.getName(fctx, id, key, true)
				if a.err == nil {
					once.Do(cancel)
				}
			})
		}
		wg.Wait()
	} else {
		for i, t := range tables {
			wg.Go(func() {
				a := &answers[i]
				a.looked = t.kad.RoutingTable().Size() > 0
				a.r, a.err = t.getName(ctx, id, key, false)
			})
		}
		wg.Wait()
	}
	return newest(ctx, answers, bucket.NewerName, fmt.Sprintf("name %x", id[:6]))
}

func (t table) getName(ctx context.Context, id bucket.NameID, key string, first bool) (bucket.NameRecord, error) {
	b, err := t.getValue(ctx, key, first)
	if err != nil {
		return bucket.NameRecord{}, fmt.Errorf("%s dht: %w", t.name, err)
	}
	r, err := bucket.ParseNameRecord(b, time.Now())
	if err == nil && bucket.NameIDOf(r.Scope(), r.Name) != id {
		err = fmt.Errorf("%w %q: under the key of another name", bucket.ErrBadNameRecord, r.Name)
	}
	if err != nil {
		return r, fmt.Errorf("%s dht: %w", t.name, err)
	}
	return r, nil
}
