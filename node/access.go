package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
)

// In names the bucket a put or a get works in, and the grant token that
// lets it (empty: none, or one the node issues itself with the owner's key).
type In struct {
	Bucket bucket.ID
	Token  string
}

// ErrTokenWithoutBucket means a grant token given without the bucket it
// is for.
var ErrTokenWithoutBucket = errors.New("a token without a bucket")

// ParseIn reads a bucket's text ID and a token for it (either may be
// empty); nil when no bucket is named. Both are checked for form here, so
// a malformed one fails before any work; what the token allows is the
// holders' to judge.
func ParseIn(id, token string) (*In, error) {
	if id == "" {
		if token != "" {
			return nil, fmt.Errorf("%w: name the bucket the grant is for", ErrTokenWithoutBucket)
		}
		return nil, nil
	}
	b, err := bucket.ParseID(id)
	if err != nil {
		return nil, err
	}
	if token != "" {
		if _, err := bucket.ParseToken(token); err != nil {
			return nil, err
		}
	}
	return &In{Bucket: b, Token: token}, nil
}

// records caches the bucket records the repo keeps, for the exchange's
// access rule, which looks one up for every piece it serves.
type records struct {
	repo string
	mu   sync.Mutex
	m    map[bucket.ID]bucket.Record
}

// get returns the record of id, from the cache or the repo.
func (rs *records) get(id bucket.ID) (bucket.Record, bool) {
	rs.mu.Lock()
	r, ok := rs.m[id]
	rs.mu.Unlock()
	if ok {
		return r, true
	}
	bs, err := repo.Buckets(rs.repo)
	if err != nil {
		return r, false
	}
	if r, err = bs.Get(id); err != nil {
		return r, false
	}
	rs.put(r)
	return r, true
}

// put caches r unless a newer record of its bucket is cached.
func (rs *records) put(r bucket.Record) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.m == nil {
		rs.m = make(map[bucket.ID]bucket.Record)
	}
	if old, ok := rs.m[r.Bucket]; !ok || bucket.Newer(r, old) {
		rs.m[r.Bucket] = r
	}
}

// access is the exchange's rule: a piece in no bucket, or in a public one,
// is served to anyone; a piece only in private buckets is served to a
// request in one of them from the bucket's owner, or with a token that
// grants get to the requesting peer's key or to any bearer. A bucket
// whose record this node lacks counts as private.
func (n *Node) access(p peer.ID, c cid.Cid, b, token []byte) error {
	members, err := n.repo.Store.Buckets(c)
	if err != nil {
		return fmt.Errorf("cannot tell the buckets of %s: %v", c, err)
	}
	if len(members) == 0 {
		return nil
	}
	for _, m := range members {
		if r, ok := n.records.get(bucket.ID(m)); ok && !r.Private {
			return nil
		}
	}
	first := bucket.ID(members[0])
	if len(b) != len(bucket.ID{}) {
		return fmt.Errorf("bucket %s is private: no grant (the request names no bucket)", first)
	}
	id := bucket.ID(b)
	if !slices.Contains(members, store.Bucket(id)) {
		return fmt.Errorf("bucket %s is private: no grant (the piece is not in bucket %s)", first, id)
	}
	return n.bucketAccess(p, id, token)
}

// bucketAccess is the rule for peer p in bucket id as a whole: anyone in a
// public bucket; in a private one its owner, or a token that grants get to
// p's key or to any bearer. A search follows it as reads do.
func (n *Node) bucketAccess(p peer.ID, id bucket.ID, token []byte) error {
	r, ok := n.records.get(id)
	if !ok {
		return fmt.Errorf("bucket %s: this holder has no record of it", id)
	}
	if !r.Private {
		return nil
	}
	requester, err := repo.AccountOfPeer(p)
	if err != nil {
		return err
	}
	if requester == r.Owner {
		return nil
	}
	if len(token) == 0 {
		return fmt.Errorf("bucket %s is private: no grant", id)
	}
	return n.verifier.Verify(string(token), bucket.Request{Bucket: id, Owner: r.Owner, Op: bucket.OpGet, Requester: &requester, Now: time.Now()})
}

// record looks up the record of in's bucket, from the repo or the
// cluster's DHT, and checks that it lives in the node's cluster.
func (n *Node) record(ctx context.Context, in *In) (bucket.Record, error) {
	r, err := n.knownBucket(ctx, in.Bucket)
	if err == nil && r.Cluster != n.Cluster() {
		err = fmt.Errorf("%w: bucket %s lives in cluster %q, this node in %q", ErrOtherCluster, r.Bucket, r.Cluster, n.Cluster())
	}
	return r, err
}

// PutIn is Put into a bucket (none when in is nil): the node must hold a
// put grant for it, or its owner's key. The node announces that it holds
// data of the bucket.
func (n *Node) PutIn(ctx context.Context, rd io.Reader, opt pieces.BuildOptions, in *In) (pieces.BuildResult, error) {
	var id *bucket.ID
	if in != nil {
		r, err := n.record(ctx, in)
		if err != nil {
			return pieces.BuildResult{}, err
		}
		if err := n.repo.Authorize(r, bucket.OpPut, in.Token); err != nil {
			return pieces.BuildResult{}, err
		}
		id = &r.Bucket
	}
	var stored []cid.Cid
	res, err := n.repo.PutIn(ctx, rd, opt, id, func(c cid.Cid) { stored = append(stored, c) })
	if err == nil {
		if id != nil {
			stored = append(stored, bucket.HoldersKey(*id))
		}
		n.ann.add(stored)
	}
	return res, err
}
