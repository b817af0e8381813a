package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces/store"
)

// ErrOtherCluster means a bucket that lives in another cluster than the
// node's.
var ErrOtherCluster = errors.New("bucket of another cluster")

// recordRepublish is how often the node publishes the bucket records its
// repo keeps again: DHT nodes drop a record after 48 hours.
const recordRepublish = 12 * time.Hour

// publishRecords publishes every kept bucket record of the node's cluster
// once the node has joined, then every recordRepublish.
func (n *Node) publishRecords() {
	select {
	case <-n.ctx.Done():
		return
	case <-n.joined:
	}
	t := time.NewTicker(recordRepublish)
	defer t.Stop()
	for {
		bs, err := repo.Buckets(n.repo.Path)
		if err == nil {
			var rs []bucket.Record
			if rs, err = bs.List(); err == nil {
				for _, r := range rs {
					if r.Cluster == n.Cluster() {
						if err := n.dht.PutBucketRecord(n.ctx, r); err != nil && n.ctx.Err() == nil {
							n.log.Debug("publish bucket record", "bucket", r.Bucket, "err", err)
						}
					}
				}
			}
		}
		if err != nil {
			n.log.Warn("bucket records", "err", err)
		}
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PublishBucket publishes the record of id the repo keeps.
func (n *Node) PublishBucket(ctx context.Context, id bucket.ID) (bucket.Record, error) {
	bs, err := repo.Buckets(n.repo.Path)
	if err != nil {
		return bucket.Record{}, err
	}
	r, err := bs.Get(id)
	if err != nil {
		return r, err
	}
	n.records.put(r)
	if r.Cluster != n.Cluster() {
		return r, fmt.Errorf("%w: bucket %s lives in cluster %q, this node in %q", ErrOtherCluster, id, r.Cluster, n.Cluster())
	}
	n.waitRouting(ctx)
	return r, n.dht.PutBucketRecord(ctx, r)
}

// FindBucket returns the newest record of id: the one the repo keeps or a
// newer one from the cluster's DHT, which the repo then keeps.
func (n *Node) FindBucket(ctx context.Context, id bucket.ID) (bucket.Record, error) {
	bs, err := repo.Buckets(n.repo.Path)
	if err != nil {
		return bucket.Record{}, err
	}
	kept, keptErr := bs.Get(id)
	n.waitRouting(ctx)
	found, err := n.dht.GetBucketRecord(ctx, id)
	switch {
	case err != nil && keptErr != nil:
		return kept, fmt.Errorf("%w (%w)", keptErr, err)
	case err != nil:
		n.records.put(kept)
		return kept, nil
	case keptErr == nil && !bucket.Newer(found, kept):
		n.records.put(kept)
		return kept, nil
	}
	n.records.put(found)
	if _, err := bs.Keep(found); err != nil {
		n.log.Warn("keep bucket record", "bucket", id, "err", err)
	}
	return found, nil
}

// eachHeldBucket calls fn for every bucket whose record the repo keeps and
// of which the store holds a file.
func (n *Node) eachHeldBucket(ctx context.Context, fn func(bucket.ID) error) error {
	bs, err := repo.Buckets(n.repo.Path)
	if err != nil {
		return err
	}
	rs, err := bs.List()
	if err != nil {
		return err
	}
	for _, r := range rs {
		held := false
		err := n.repo.Store.BucketFiles(ctx, store.Bucket(r.Bucket), func(cid.Cid, time.Time) error {
			held = true
			return errStop
		})
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
		if held {
			if err := fn(r.Bucket); err != nil {
				return err
			}
		}
	}
	return nil
}

var errStop = errors.New("stop")
