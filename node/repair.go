package node

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/dht"
	"github.com/ddc-project/ddc/pieces/store"
)

// Repair. Every node that keeps a file of a bucket of R > 1 replicas
// checks, once each check interval, who keeps it: it asks the cluster's
// nodes closest to the root, nearest first (from its routing tables, with
// no lookup), whether they keep the file, until it has found R holders.
// The files are checked in batches: one stream a node and bucket asks
// about thousands of files (check.go).
//   - Fewer than R, some node on the way lacking it, and this node the
//     nearest holder: once that has lasted the grace period, counted from
//     when the missing holder lost its connection to this node if it
//     did, it pushes the file again (Replicate), which passes over the
//     nodes that are gone.
//   - This node not among the R holders found, nearer ones keeping it: it
//     is surplus (a holder that came back after repair, or an uploader
//     farther than R others): once that has lasted the grace period, its
//     copy becomes cache. So the holders settle at the R nearest that
//     keep it, never more than R for longer than the grace period.
// The grace period keeps a restart from counting as a loss.

// checksAtOnce bounds the checks a pass has in flight, one a node.
const checksAtOnce = 8

// RepairChecksPerSecond bounds the pace of the periodic checks: past
// check_interval × this many files, the passes come further apart, so a
// node of a million one-piece files spends about half a percent of a core
// on them (a check costs tens of µs) and checks each every three hours.
// Losses that close a connection are checked at their grace's end all
// the same (checkLost); the pass is for the silent ones.
const RepairChecksPerSecond = 100

// quietFor is how long a node that did not answer a check is passed over
// unasked, unless it reconnects: the next passes do not each wait out a
// stream timeout on a dead node, and a live one is asked again soon.
const quietFor = 30 * time.Second

// nearestChecked is how many nodes of the routing tables a check takes,
// nearest the root first: the Kademlia bucket size, past any factor.
const nearestChecked = 20

// startRepair checks the holders of the files this node keeps for
// replicated buckets, each check interval, until Close, and notes when
// peers lose their last connection to it: a holder killed on a LAN is
// seen gone at once, so its grace runs from then, not from the next
// check.
func (n *Node) startRepair() error {
	every := n.repo.Config.Replication.CheckOrDefault()
	sub, err := n.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return fmt.Errorf("repair: watch connections: %w", err)
	}
	n.wg.Go(func() {
		defer sub.Close()
		for {
			select {
			case <-n.ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				c := e.(event.EvtPeerConnectednessChanged)
				if lost := n.repairs.connectedness(c.Peer, c.Connectedness == network.Connected, time.Now()); len(lost) > 0 {
					n.wg.Go(func() { n.checkLost(lost) })
				}
			}
		}
	})
	n.wg.Go(func() {
		// The first pass a grace period after the start at the latest, so
		// a node that just started knows its files' holders by the time a
		// loss of one would count.
		wait := min(every, n.repo.Config.Replication.GraceOrDefault())
		for {
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(wait):
			}
			files := n.repairPass(n.ctx)
			wait = max(every, time.Duration(files)*time.Second/RepairChecksPerSecond)
		}
	})
	return nil
}

// replicated is a file this node keeps for a bucket of more than one
// replica, or for others in a bucket lowered to one.
type replicated struct {
	rec  *bucket.Record
	root cid.Cid
}

// repairPass checks every replicated file this node keeps, a batch of
// files at a time, and returns how many.
func (n *Node) repairPass(ctx context.Context) int {
	type kept struct {
		b    store.Bucket
		root cid.Cid
	}
	var all []kept
	err := n.repo.Store.EachBucketFile(ctx, func(b store.Bucket, root cid.Cid) error {
		all = append(all, kept{b, root})
		return nil
	})
	if err != nil {
		n.log.Warn("repair: cannot list the files kept for buckets", "err", err)
		return 0
	}
	// The records after the listing, which a lookup must not hold open.
	var files []replicated
	recs := make(map[store.Bucket]*bucket.Record)
	for _, k := range all {
		rec, ok := recs[k.b]
		if !ok {
			if r, err := n.records.current(ctx, bucket.ID(k.b)); err == nil && (r.Replicas > 1 || n.keepsFor(r.Bucket)) {
				rec = &r
			}
			recs[k.b] = rec
		}
		if rec != nil {
			files = append(files, replicated{rec, k.root})
		}
	}
	count := len(files)
	for len(files) > 0 && ctx.Err() == nil {
		k := min(len(files), maxCheckRoots)
		n.checkBatch(ctx, files[:k])
		files = files[k:]
	}
	return count
}

// keepsFor reports whether this node keeps files of bucket b for others:
// a push brought it a grant. Its files of a bucket lowered to 1 replica
// are checked still, so that the nearest keeper keeps them and the others
// let them go; an uploader's own files of a bucket of 1 are not.
func (n *Node) keepsFor(b bucket.ID) bool {
	_, ok, _ := n.repo.KeptGrant(b)
	return ok
}

// checkBatch checks files together: each file's nearest nodes in the
// routing tables, as many as its factor, are asked at once, one stream a
// node and bucket. A file whose walk needs a node not asked (more were
// gone or lacking it) is checked alone.
func (n *Node) checkBatch(ctx context.Context, files []replicated) {
	self := n.host.ID()
	type ask struct {
		p peer.ID
		b bucket.ID
	}
	type fileAt struct {
		p peer.ID
		i int
	}
	now := time.Now()
	cands := make([][]peer.ID, len(files))
	asks := make(map[ask][]int)
	asked := make(map[fileAt]bool)
	for i, f := range files {
		cs := append(slices.DeleteFunc(n.dht.NearestPeers(f.root, nearestChecked), func(p peer.ID) bool { return p == self }), self)
		dht.SortByDistance(f.root, cs)
		cands[i] = cs
		k := 0
		for _, p := range cs {
			if p == self {
				continue
			}
			if k == f.rec.Replicas { // R others: R holders with one gone
				break
			}
			asked[fileAt{p, i}] = true // a quiet one: asked, no answer
			k++
			if n.repairs.quiet(p, now, quietFor) {
				continue
			}
			a := ask{p, f.rec.Bucket}
			asks[a] = append(asks[a], i)
		}
	}
	grants := make(map[bucket.ID]string) // one grant a bucket for the batch
	for a := range asks {
		if _, ok := grants[a.b]; !ok {
			grants[a.b] = n.checkGrant(a.b)
		}
	}
	var mu sync.Mutex
	held := make(map[fileAt]bool)
	var wg sync.WaitGroup
	sem := make(chan struct{}, checksAtOnce)
	for a, idx := range asks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			roots := make([]cid.Cid, len(idx))
			for j, i := range idx {
				roots[j] = files[i].root
			}
			ans, err := n.check(ctx, a.p, a.b, grants[a.b], roots)
			if err != nil {
				n.repairs.silent(a.p, time.Now())
				n.log.Debug("repair: check not answered", "peer", a.p, "err", err)
				return
			}
			n.repairs.answered(a.p)
			mu.Lock()
			defer mu.Unlock()
			for j, i := range idx {
				held[fileAt{a.p, i}] = ans[j]
			}
		})
	}
	wg.Wait()
	for i, f := range files {
		if ctx.Err() != nil {
			return
		}
		var holders, silent []peer.ID
		lacking, whole := 0, true
		for _, p := range cands[i] {
			if len(holders) == f.rec.Replicas {
				break
			}
			if p == self {
				holders = append(holders, self) // a file it roots: why it is checked
				continue
			}
			if !asked[fileAt{p, i}] {
				whole = false
				break
			}
			switch h, ok := held[fileAt{p, i}]; {
			case !ok:
				silent = append(silent, p)
			case h:
				holders = append(holders, p)
			default:
				lacking++
			}
		}
		if whole {
			n.judge(ctx, *f.rec, f.root, holders, lacking, silent)
		} else {
			n.checkHolders(ctx, *f.rec, f.root, silent)
		}
	}
}

// keepers asks the cluster's nodes closest to root, nearest first, this
// one among them, whether they keep it for rec's bucket, until want of
// them do (0: every node the lookup found). It returns those that do,
// nearest first, and how many said they do not; nodes that do not answer
// are neither.
//
// With local, the nodes are those of this node's routing tables, with no
// lookup: what a periodic check can afford. A table that misses a nearer
// node errs toward keeping copies, and a push again walks the DHT.
func (n *Node) keepers(ctx context.Context, rec bucket.Record, root cid.Cid, want int, local bool, skip []peer.ID) (holders []peer.ID, lacking int, silent []peer.ID, err error) {
	self := n.host.ID()
	var cands []peer.ID
	if local {
		cands = n.dht.NearestPeers(root, nearestChecked)
	}
	if len(cands) == 0 {
		if cands, err = n.dht.ClosestPeers(ctx, root); err != nil {
			return nil, 0, nil, err
		}
	}
	cands = append(slices.DeleteFunc(cands, func(p peer.ID) bool { return p == self }), self)
	dht.SortByDistance(root, cands)
	token := n.checkGrant(rec.Bucket)
	for _, p := range cands {
		if want > 0 && len(holders) == want {
			break
		}
		if slices.Contains(skip, p) || n.repairs.quiet(p, time.Now(), quietFor) {
			silent = append(silent, p)
			continue
		}
		if p == self {
			if ok, err := n.repo.Store.InBucketFile(store.Bucket(rec.Bucket), root); err == nil && ok {
				holders = append(holders, self)
			} else {
				lacking++
			}
			continue
		}
		switch held, err := n.check(ctx, p, rec.Bucket, token, []cid.Cid{root}); {
		case err != nil: // gone, or cannot say: neither
			n.repairs.silent(p, time.Now())
			silent = append(silent, p)
		case held[0]:
			n.repairs.answered(p)
			holders = append(holders, p)
		default:
			n.repairs.answered(p)
			lacking++
		}
	}
	return holders, lacking, silent, nil
}

// checkHolders checks who keeps root of rec's bucket and repairs or gives
// up this node's copy as the rule above says; the nodes in skip did not
// answer a check just now, and are not asked again.
func (n *Node) checkHolders(ctx context.Context, rec bucket.Record, root cid.Cid, skip []peer.ID) {
	holders, lacking, silent, err := n.keepers(ctx, rec, root, rec.Replicas, true, skip)
	if err != nil {
		n.log.Debug("repair: no closest nodes", "cid", root, "err", err)
		return
	}
	n.judge(ctx, rec, root, holders, lacking, silent)
}

// judge repairs root or gives up this node's copy, as the rule above says,
// holders (nearest first) keeping it, lacking nodes nearer than the last
// of them saying they do not, and the silent ones not answering.
func (n *Node) judge(ctx context.Context, rec bucket.Record, root cid.Cid, holders []peer.ID, lacking int, silent []peer.ID) {
	self := n.host.ID()
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
		n.repairs.forget(f)
	case len(holders) < rec.Replicas && lacking > 0 && holders[0] == self:
		if left := grace - now.Sub(n.repairs.shortSince(f, holders, now)); left > 0 {
			n.checkAt(f, left, rec, root) // at the grace's end, not a whole interval later
			return
		}
		if !n.repairs.mark(f+"push", true) {
			return
		}
		defer n.repairs.mark(f+"push", false)
		pl, err := n.replicate(ctx, &In{Bucket: rec.Bucket}, root, nil, silent)
		n.metrics.repairPushes.Inc()
		n.log.Info("repair: file pushed again", "cid", root, "bucket", rec.Bucket, "holders", pl.Holders, "err", err)
		if err == nil {
			n.repairs.full(f, rec.Bucket, root, pl.Holders)
		}
	case len(holders) == rec.Replicas:
		n.repairs.full(f, rec.Bucket, root, holders)
	}
}

// checkLost checks, at the end of their grace, the files whose last
// checks found a holder that has now lost its connection: a loss seen by
// the connection, not by the next pass, which may be hours away on a node
// of many files.
func (n *Node) checkLost(lost map[string]heldFile) {
	grace := n.repo.Config.Replication.GraceOrDefault()
	for f, h := range lost {
		rec, err := n.records.current(n.ctx, h.bucket)
		if err != nil {
			continue // the pass will see it
		}
		n.checkAt(f, grace, rec, h.root)
	}
}

// checkAt checks the holders of root once more after d, unless a check of
// it is due already.
func (n *Node) checkAt(f string, d time.Duration, rec bucket.Record, root cid.Cid) {
	if !n.repairs.mark(f+"due", true) {
		return
	}
	n.wg.Go(func() {
		defer n.repairs.mark(f+"due", false)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-n.ctx.Done():
		case <-t.C:
			n.repairs.mark(f+"due", false) // so this check may set the next
			n.checkHolders(n.ctx, rec, root, nil)
		}
	})
}
