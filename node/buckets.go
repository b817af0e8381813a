package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/dht"
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
// once the node has joined, then every recordRepublish; while it has no
// DHT peers to publish to, it tries again after a back-off, so a node
// that starts alone publishes its records soon after others join.
func (n *Node) publishRecords() {
	select {
	case <-n.ctx.Done():
		return
	case <-n.joined:
	}
	retry := firstRecordRetry
	for {
		alone, err := n.publishKept()
		if err != nil {
			n.log.Warn("bucket records", "err", err)
		}
		wait := recordRepublish
		if alone {
			wait, retry = retry, min(2*retry, maxRecordRetry)
		} else {
			retry = firstRecordRetry
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// firstRecordRetry and maxRecordRetry bound the back-off of publishing
// records while the node has no DHT peers.
const (
	firstRecordRetry = 5 * time.Second
	maxRecordRetry   = 10 * time.Minute
)

// publishKept publishes the kept records of the node's cluster; alone
// says some found no DHT peer to go to.
func (n *Node) publishKept() (alone bool, err error) {
	bs, err := repo.Buckets(n.repo.Path)
	if err != nil {
		return false, err
	}
	rs, err := bs.List()
	if err != nil {
		return false, err
	}
	for _, r := range rs {
		if r.Cluster != n.Cluster() {
			continue
		}
		if err := n.dht.PutBucketRecord(n.ctx, r); err != nil && n.ctx.Err() == nil {
			alone = alone || errors.Is(err, dht.ErrNoPeers)
			n.log.Debug("publish bucket record", "bucket", r.Bucket, "err", err)
		}
	}
	return alone, nil
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
	return n.findBucket(ctx, id, false)
}

// knownBucket returns a record of id without waiting on a full DHT lookup:
// the one the repo keeps, or the first valid one the DHT gives, which the
// repo then keeps. A transfer needs the owner, not the newest label; the
// holders judge access by their own records.
func (n *Node) knownBucket(ctx context.Context, id bucket.ID) (bucket.Record, error) {
	if r, ok := n.records.get(id); ok {
		return r, nil
	}
	return n.findBucket(ctx, id, true)
}

func (n *Node) findBucket(ctx context.Context, id bucket.ID, first bool) (bucket.Record, error) {
	bs, err := repo.Buckets(n.repo.Path)
	if err != nil {
		return bucket.Record{}, err
	}
	kept, keptErr := bs.Get(id)
	n.waitRouting(ctx)
	found, err := n.dht.GetBucketRecord(ctx, id, first)
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
