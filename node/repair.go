package node

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/dht"
	"github.com/ddc-project/ddc/pieces/store"
)

// Repair. Every node that keeps a file of a bucket of R > 1 replicas
// checks, once each check interval, who keeps it: it walks the cluster's
// nodes closest to the root, nearest first, asking each whether it keeps
// the file (a push that only checks), until it has found R holders.
//   - Fewer than R, some node on the way lacking it, and this node the
//     nearest holder: once that has lasted the grace period, it pushes the
//     file again (Replicate), which passes over the nodes that are gone.
//   - This node not among the R holders found, nearer ones keeping it: it
//     is surplus (a holder that came back after repair, or an uploader
//     farther than R others): once that has lasted the grace period, its
//     copy becomes cache. So the holders settle at the R nearest that
//     keep it, never more than R for longer than the grace period.
// The grace period keeps a restart from counting as a loss.

// probeWait bounds one check of one node: a dial to a node that is gone
// fails at once on a LAN, or times out here.
const probeWait = 10 * time.Second

// repairs is what the checks saw: since when each file has been short of
// holders, or this node surplus.
type repairs struct {
	mu    sync.Mutex
	since map[string]time.Time
}

// lasted reports how long the state key has held, starting it now if it
// is new.
func (r *repairs) lasted(key string, now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.since == nil {
		r.since = make(map[string]time.Time)
	}
	t, ok := r.since[key]
	if !ok {
		r.since[key] = now
		return 0
	}
	return now.Sub(t)
}

// clear forgets the states of file f.
func (r *repairs) clear(f string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.since, f+"short")
	delete(r.since, f+"surplus")
}

// startRepair checks the holders of the files this node keeps for
// replicated buckets, each check interval, until Close.
func (n *Node) startRepair() {
	every := n.repo.Config.Replication.CheckOrDefault()
	n.wg.Go(func() {
		for {
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(every):
			}
			n.repairPass(n.ctx, every)
		}
	})
}

// replicated is a file this node keeps for a bucket of more than one
// replica.
type replicated struct {
	rec  bucket.Record
	root cid.Cid
}

// repairPass checks every replicated file this node keeps, spread over
// span.
func (n *Node) repairPass(ctx context.Context, span time.Duration) {
	var files []replicated
	err := n.repo.Store.EachBucketFile(ctx, func(b store.Bucket, root cid.Cid) error {
		rec, err := n.records.current(ctx, bucket.ID(b))
		if err == nil && rec.Replicas > 1 {
			files = append(files, replicated{rec, root})
		}
		return nil
	})
	if err != nil {
		n.log.Warn("repair: cannot list the files kept for buckets", "err", err)
		return
	}
	gap := span / time.Duration(len(files)+1)
	for _, f := range files {
		n.checkHolders(ctx, f.rec, f.root)
		select {
		case <-ctx.Done():
			return
		case <-time.After(gap):
		}
	}
}

// keepers asks the cluster's nodes closest to root, nearest first, this
// one among them, whether they keep it for rec's bucket, until want of
// them do (0: every node the lookup found). It returns those that do,
// nearest first, and how many said they do not; nodes that do not answer
// are neither.
func (n *Node) keepers(ctx context.Context, rec bucket.Record, root cid.Cid, want int) (holders []peer.ID, lacking int, err error) {
	self := n.host.ID()
	cands, err := n.dht.ClosestPeers(ctx, root)
	if err != nil {
		return nil, 0, err
	}
	cands = append(slices.DeleteFunc(cands, func(p peer.ID) bool { return p == self }), self)
	dht.SortByDistance(root, cands)
	for _, p := range cands {
		if want > 0 && len(holders) == want {
			break
		}
		if p == self {
			if ok, err := n.repo.Store.InBucketFile(store.Bucket(rec.Bucket), root); err == nil && ok {
				holders = append(holders, self)
			} else {
				lacking++
			}
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, probeWait)
		err := n.push(pctx, p, pushRequest{Bucket: rec.Bucket.String(), Root: root.String(), Check: true}, nil)
		cancel()
		var pe *PushError
		switch {
		case err == nil:
			holders = append(holders, p)
		case errors.As(err, &pe) && pe.Status == PushMissing:
			lacking++
		}
	}
	return holders, lacking, nil
}

// checkHolders checks who keeps root of rec's bucket and repairs or gives
// up this node's copy as the rule above says.
func (n *Node) checkHolders(ctx context.Context, rec bucket.Record, root cid.Cid) {
	self := n.host.ID()
	holders, lacking, err := n.keepers(ctx, rec, root, rec.Replicas)
	if err != nil {
		n.log.Debug("repair: no closest nodes", "cid", root, "err", err)
		return
	}
	n.metrics.repairChecks.Inc()
	n.log.Debug("repair: checked", "cid", root, "holders", holders, "lacking", lacking)
	f := root.KeyString() + string(rec.Bucket[:])
	grace := n.repo.Config.Replication.GraceOrDefault()
	now := time.Now()
	switch {
	case !slices.Contains(holders, self):
		if n.repairs.lasted(f+"surplus", now) < grace {
			return
		}
		if err := n.repo.Store.Unroot(store.Bucket(rec.Bucket), root); err != nil {
			n.log.Warn("repair: surplus copy kept", "cid", root, "err", err)
			return
		}
		n.metrics.repairDropped.Inc()
		n.log.Info("repair: nearer nodes keep the file; this copy is cache now", "cid", root, "bucket", rec.Bucket, "holders", holders)
		n.repairs.clear(f)
	case len(holders) < rec.Replicas && lacking > 0 && holders[0] == self:
		if n.repairs.lasted(f+"short", now) < grace {
			return
		}
		pl, err := n.Replicate(ctx, &In{Bucket: rec.Bucket}, root, nil)
		n.metrics.repairPushes.Inc()
		n.log.Info("repair: file pushed again", "cid", root, "bucket", rec.Bucket, "holders", pl.Holders, "err", err)
		if err == nil {
			n.repairs.clear(f)
		}
	default:
		n.repairs.clear(f)
	}
}
