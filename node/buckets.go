package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/dht"
	"github.com/ddc-project/ddc/internal/frame"
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
		case <-n.publishSoon: // a publish found no peer: try again on the back-off
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

// PublishBucket publishes the record of id the repo keeps: in the DHT,
// and straight to the bucket's holders the DHT names and the connected
// peers, so that a change (bucket set --private) reaches them at once
// rather than when they next look the record up.
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
	err = n.dht.PutBucketRecord(ctx, r)
	if errors.Is(err, dht.ErrNoPeers) {
		select { // publishRecords tries again once peers come
		case n.publishSoon <- struct{}{}:
		default:
		}
	}
	n.pushRecord(ctx, r)
	return r, err
}

// FindBucket returns the newest record of id: the one the repo keeps or a
// newer one from the cluster's DHT, which the repo then keeps.
func (n *Node) FindBucket(ctx context.Context, id bucket.ID) (bucket.Record, error) {
	return n.findBucket(ctx, id, false)
}

// knownBucket returns a record of id without waiting on a full DHT lookup:
// the one the repo keeps, or the first valid one the DHT gives, which the
// repo then keeps. A transfer needs the owner and the cluster, which no
// version changes; whether the bucket is public the access rule asks of
// current records only.
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
	if err := n.records.offer(found); err != nil {
		n.log.Warn("keep bucket record", "bucket", id, "err", err)
	}
	return found, nil
}

// newRecords makes the node's cache of bucket records: checked against
// the DHT's newest, current for the repo's record TTL.
func (n *Node) newRecords() *records {
	ttl := n.opts.RecordTTL
	if t := n.repo.Config.Network.RecordTTL; t > 0 {
		ttl = time.Duration(t)
	}
	if ttl == 0 {
		ttl = DefaultRecordTTL
	}
	return &records{
		ctx: n.ctx, repo: n.repo.Path, ttl: ttl, log: n.log,
		lookup: func(ctx context.Context, id bucket.ID) (bucket.Record, error) {
			n.waitRouting(ctx)
			return n.dht.GetBucketRecord(ctx, id, false)
		},
		owned: func(owner bucket.PublicKey) bool {
			ks, err := repo.Keys(n.repo.Path)
			if err != nil {
				return false
			}
			_, ok, _ := ks.Owned(owner)
			return ok
		},
	}
}

// Pushing records, each limit with why.
const (
	// maxPushes bounds the nodes one publish sends a record to straight.
	maxPushes = 64
	// pushTimeout bounds finding them and sending to each.
	pushTimeout = 5 * time.Second
	// maxPushedRecord bounds what a pushed record's frame may hold: a
	// record is at most 1 KiB.
	maxPushedRecord = 2 << 10
)

// recordProtocol is the protocol on which a node hands another a bucket
// record: one frame holding its encoding. Anyone may send one: it is
// signed by the owner, checked, and kept only when newer.
func recordProtocol(cluster string) protocol.ID {
	return protocol.ID("/ddc/" + cluster + "/bucket-record/1.0.0")
}

// startRecordPush takes records other nodes send.
func (n *Node) startRecordPush() {
	n.host.SetStreamHandler(recordProtocol(n.Cluster()), func(str network.Stream) {
		defer str.Close()
		str.SetDeadline(time.Now().Add(pushTimeout))
		b, err := frame.Read(bufio.NewReader(str), maxPushedRecord)
		if err != nil {
			str.Reset()
			return
		}
		r, err := bucket.ParseRecord(b)
		if err == nil && r.Cluster != n.Cluster() {
			err = fmt.Errorf("%w: bucket %s lives in cluster %q", ErrOtherCluster, r.Bucket, r.Cluster)
		}
		if err == nil {
			err = n.records.offer(r)
		}
		if err != nil {
			n.log.Debug("pushed bucket record refused", "peer", str.Conn().RemotePeer(), "err", err)
		}
	})
}

// pushRecord sends r to the holders of its bucket the DHT names and to
// the connected peers, at most maxPushes of them, within pushTimeout.
func (n *Node) pushRecord(ctx context.Context, r bucket.Record) {
	enc, err := r.Marshal()
	if err != nil {
		return
	}
	n.pushTo(ctx, recordProtocol(n.Cluster()), enc, true, &r.Bucket)
}

// pushTo sends enc on proto to the connected peers (unless connected is
// false: then they count as reached already) and to the holders of the
// bucket holders, if set, that the DHT names; at most maxPushes peers,
// within pushTimeout, each read until the other side has taken it.
func (n *Node) pushTo(ctx context.Context, proto protocol.ID, enc []byte, connected bool, holders *bucket.ID) {
	ctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	sent := map[peer.ID]bool{n.host.ID(): true}
	var wg sync.WaitGroup
	to := func(p peer.ID) {
		if sent[p] || len(sent) > maxPushes {
			return
		}
		sent[p] = true
		wg.Go(func() {
			str, err := n.host.NewStream(ctx, p, proto)
			if err != nil {
				return
			}
			str.SetDeadline(time.Now().Add(pushTimeout))
			if err := frame.Write(str, enc); err != nil {
				str.Reset()
				return
			}
			str.CloseWrite()
			str.Read(make([]byte, 1)) // until the other side has taken it
			str.Close()
		})
	}
	for _, p := range n.host.Network().Peers() {
		if connected {
			to(p)
		} else {
			sent[p] = true
		}
	}
	if holders != nil {
		for ai := range n.dht.FindProviders(ctx, bucket.HoldersKey(*holders), 0) {
			if len(ai.Addrs) > 0 {
				n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
			}
			to(ai.ID)
		}
	}
	wg.Wait()
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
