package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/dht"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces/store"
)

// Placement. A file of a bucket of replication factor R is kept by the R
// nodes of the cluster XOR-closest to its root's CID, in the DHT's own
// keyspace, among those that accept the bucket's files: a node that
// refuses, is full or keeps failing is passed over for the next. The unit
// is the file, not each piece: a reader streams a file from its holders,
// and one lookup and one check a file, not a thousand, is what repair
// can afford on a node of millions of pieces. The placement needs no
// coordinator: any node that asks the DHT for the closest peers of the
// root finds the same nodes, less those that left.

// ErrTooFewHolders is a replication that found fewer nodes to keep a file
// than its bucket asks for.
var ErrTooFewHolders = errors.New("too few nodes keep the file")

// Replication limits, each with why.
const (
	// keeperGrantLife is how long the grant a bucket owner's node gives a
	// node it pushes to lasts: the keeper reads the file with it, and
	// passes it on when it pushes the file again to replace a lost
	// holder, so it lasts as long as a file is likely kept, a year.
	keeperGrantLife = 365 * 24 * time.Hour
	// busyTries and busyBackoff: a node busy pulling other pushes is
	// asked again a few times before the next is asked instead.
	busyTries   = 4
	busyBackoff = time.Second
)

// Placement is where a file of a bucket is kept.
type Placement struct {
	Replicas int          // the bucket's factor
	Holders  []peer.ID    // nodes that keep it, nearest its root first (this one too when it is one)
	Skipped  []*PushError // nodes passed over, and why
}

// ReplicaEvent is a step of a replication: a node took a push, holds
// the file or was passed over.
type ReplicaEvent struct {
	Peer   peer.ID
	Status PushStatus
	Err    string
}

// Replicate has the file root, which this node holds whole, kept by the
// replication factor of in's bucket of nodes (see Placement), pushing it
// to those that lack it; progress, when set, hears each step, one at a
// time, until Replicate returns. It returns
// ErrTooFewHolders, with the placement it reached, when the cluster has
// not enough nodes that take it.
func (n *Node) Replicate(ctx context.Context, in *In, root cid.Cid, progress func(ReplicaEvent)) (Placement, error) {
	return n.replicate(ctx, in, root, progress, nil)
}

// replicate is Replicate passing over the nodes in silent, which did not
// answer a check just now: a push to a node killed behind a QUIC
// connection would wait for the connection's idle timeout.
func (n *Node) replicate(ctx context.Context, in *In, root cid.Cid, progress func(ReplicaEvent), silent []peer.ID) (Placement, error) {
	if !in.inBucket() {
		return Placement{}, fmt.Errorf("replicate %s: no bucket (a factor is a bucket's)", root)
	}
	rec, err := n.record(ctx, in)
	if err != nil {
		return Placement{}, err
	}
	if _, deleted, _ := n.repo.Tombstone(rec.Bucket, root); deleted {
		return Placement{}, fmt.Errorf("replicate %s: deleted from bucket %s", root, rec.Bucket)
	}
	pl := Placement{Replicas: rec.Replicas}
	if err := n.repo.Store.Complete(ctx, root); err != nil {
		return pl, fmt.Errorf("replicate %s: this node does not hold all of it: %w", root, err)
	}
	if progress == nil {
		progress = func(ReplicaEvent) {}
	}
	var mu sync.Mutex // pushes report from their own goroutines: one at a time
	report := progress
	progress = func(e ReplicaEvent) {
		mu.Lock()
		defer mu.Unlock()
		report(e)
	}
	self := n.host.ID()
	if rec.Replicas <= 1 {
		pl.Holders = []peer.ID{self}
		return pl, nil
	}
	size := n.repo.Store.ContentSize(ctx, root)
	n.waitRouting(ctx)
	cands, err := n.dht.ClosestPeers(ctx, root)
	if err != nil {
		return pl, fmt.Errorf("replicate %s: closest nodes: %w", root, err)
	}
	cands = append(slices.DeleteFunc(cands, func(p peer.ID) bool { return p == self || slices.Contains(silent, p) }), self)
	dht.SortByDistance(root, cands)

	type result struct {
		p   peer.ID
		err error
	}
	results := make(chan result)
	next, inflight := 0, 0
	launch := func() bool {
		for next < len(cands) {
			p := cands[next]
			next++
			if p == self {
				pl.Holders = append(pl.Holders, self)
				progress(ReplicaEvent{Peer: self, Status: PushHeld})
				return true
			}
			inflight++
			go func() {
				results <- result{p, n.pushWithRetry(ctx, p, rec, root, size, progress)}
			}()
			return true
		}
		return false
	}
	for len(pl.Holders)+inflight < rec.Replicas && launch() {
	}
	for inflight > 0 {
		r := <-results
		inflight--
		var pe *PushError
		switch {
		case r.err == nil:
			n.repairs.answered(r.p) // alive, whatever an earlier check saw
			pl.Holders = append(pl.Holders, r.p)
			progress(ReplicaEvent{Peer: r.p, Status: PushHeld})
		case errors.As(r.err, &pe):
			pl.Skipped = append(pl.Skipped, pe)
			progress(ReplicaEvent{Peer: r.p, Status: pe.Status, Err: pe.Msg})
		default: // ctx ended
			pl.Skipped = append(pl.Skipped, &PushError{Peer: r.p, Status: PushFailed, Msg: r.err.Error()})
		}
		for ctx.Err() == nil && len(pl.Holders)+inflight < rec.Replicas && launch() {
		}
	}
	dht.SortByDistance(root, pl.Holders)
	if len(pl.Holders) < rec.Replicas {
		if err := ctx.Err(); err != nil {
			return pl, err
		}
		return pl, fmt.Errorf("%w: %s in bucket %s: %d of %d (%d nodes asked of %d found)", ErrTooFewHolders, root, rec.Bucket, len(pl.Holders), rec.Replicas, next, len(cands))
	}
	if !slices.Contains(pl.Holders, self) {
		// R nodes closer to it keep it: this node's copy is cache now,
		// served until the quota or a GC takes it.
		if err := n.repo.Store.Unroot(store.Bucket(rec.Bucket), root); err != nil {
			n.log.Warn("replicated file kept here still", "cid", root, "err", err)
		}
	}
	return pl, nil
}

// pushWithRetry pushes root to p, asking again while p is busy, with the
// grant this node gives p (keeperGrant).
func (n *Node) pushWithRetry(ctx context.Context, p peer.ID, rec bucket.Record, root cid.Cid, size uint64, progress func(ReplicaEvent)) error {
	token, err := n.keeperGrant(rec, p)
	if err != nil {
		return &PushError{Peer: p, Status: PushFailed, Msg: fmt.Sprintf("grant for it: %v", err)}
	}
	accepted := func() { progress(ReplicaEvent{Peer: p, Status: PushAccepted}) }
	for try := 1; ; try++ {
		err := n.push(ctx, p, pushRequest{Bucket: rec.Bucket.String(), Root: root.String(), Size: size, Token: token}, accepted)
		var pe *PushError
		if !errors.As(err, &pe) || pe.Status != PushBusy || try == busyTries {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(busyBackoff * time.Duration(try)):
		}
	}
}

// keeperGrant is the grant a push to p carries, of get and put in rec's
// bucket, which p may pass on in turn: from the owner's key when this
// repo holds it, else passed on from the grant this node keeps the
// bucket's files by; "" when it has neither (then only nodes with a
// reason of their own take the push).
func (n *Node) keeperGrant(rec bucket.Record, p peer.ID) (string, error) {
	acct, err := repo.AccountOfPeer(p)
	if err != nil {
		return "", nil // a peer ID with no account key: no grant can name it
	}
	const ops = bucket.OpGet | bucket.OpPut
	token, err := n.repo.GrantTo(rec, acct, ops, keeperGrantLife, true)
	if err != nil || token != "" {
		return token, err
	}
	if token, err = n.repo.PassOn(rec.Bucket, acct, ops); err != nil {
		n.log.Warn("push without a grant", "bucket", rec.Bucket, "peer", p, "err", err)
		return "", nil
	}
	return token, nil
}
