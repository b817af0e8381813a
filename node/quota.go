package node

import (
	"context"
	"slices"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces/store"
)

// evictRounds bounds the GCs one eviction runs: a put that asked for room
// waits for them, and reads keep adding cache meanwhile.
const evictRounds = 8

// quotaCheck is how often the node looks at its store against the quota
// besides after each download it kept pieces of.
const quotaCheck = 10 * time.Second

// startQuota keeps the store under its quota, when it has one: past the
// high watermark, cache is evicted down to the low one, and a put that
// finds no room asks for cache to go first.
func (n *Node) startQuota() {
	max := n.repo.Store.MaxBytes()
	if max == 0 {
		return
	}
	n.quotaNudge = make(chan struct{}, 1)
	n.repo.Store.SetMakeRoom(func(ctx context.Context, need uint64) error {
		target := uint64(float64(max) * repo.LowWater)
		_, err := n.evict(ctx, target-min(target, need))
		return err
	})
	n.wg.Go(func() {
		t := time.NewTicker(quotaCheck)
		defer t.Stop()
		for {
			select {
			case <-n.ctx.Done():
				return
			case <-t.C:
			case <-n.quotaNudge:
			}
			if n.repo.Store.LiveBytes() > uint64(float64(max)*repo.HighWater) {
				if _, err := n.evict(n.ctx, uint64(float64(max)*repo.LowWater)); err != nil && n.ctx.Err() == nil {
					n.log.Warn("quota: eviction failed", "err", err)
				}
			}
		}
	})
}

// nudgeQuota has the quota looked at soon: pieces were kept.
func (n *Node) nudgeQuota() {
	if n.quotaNudge != nil {
		select {
		case n.quotaNudge <- struct{}{}:
		default:
		}
	}
}

// evict frees cache until the store's live bytes are at most target:
// the least recently used cached files stop being cache, then a GC takes
// what no root reaches of them. It returns the bytes freed; it stops
// early when no cache is left, or a round frees nothing (what is left is
// held by reads in progress).
func (n *Node) evict(ctx context.Context, target uint64) (uint64, error) {
	n.evictMu.Lock()
	defer n.evictMu.Unlock()
	st := n.repo.Store
	var freed uint64
	for range evictRounds {
		live := st.LiveBytes()
		if live <= target {
			return freed, nil
		}
		var cached []store.CachedFile
		if err := st.Cached(ctx, func(f store.CachedFile) error { cached = append(cached, f); return nil }); err != nil {
			return freed, err
		}
		if len(cached) == 0 {
			return freed, nil
		}
		slices.SortFunc(cached, func(a, b store.CachedFile) int { return a.LastUsed.Compare(b.LastUsed) })
		excess := live - target
		var picked []cid.Cid
		var picks uint64
		for _, f := range cached {
			if picks >= excess && len(picked) > 0 {
				break
			}
			picked = append(picked, f.Root)
			picks += st.ContentSize(ctx, f.Root)
		}
		if err := st.Uncache(picked); err != nil {
			return freed, err
		}
		res, err := n.collect(ctx, st.GCKeepingCache) // the rest of the cache stays
		if err != nil {
			return freed, err
		}
		freed += res.Freed
		n.metrics.evicted(len(picked), res.Freed)
		n.log.Info("quota: evicted cache", "files", len(picked), "freed", res.Freed, "live", st.LiveBytes(), "target", target)
		if res.Removed == 0 && len(picked) == len(cached) {
			return freed, nil
		}
	}
	return freed, nil
}
