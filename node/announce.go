package node

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/dht"
)

// announcer announces new pieces in the background: a put or a fetch hands
// over its CIDs and returns at once; the queue is drained in batches, each
// announced concurrently by the DHT.
type announcer struct {
	d   *dht.DHT
	log *slog.Logger

	mu      sync.Mutex
	queue   []cid.Cid
	wake    chan struct{}
	done    uint64 // CIDs announced so far, for status
	pending int    // queued plus in the batch being announced

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newAnnouncer(d *dht.DHT, log *slog.Logger) *announcer {
	a := &announcer{d: d, log: log, wake: make(chan struct{}, 1)}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.wg.Go(a.run)
	return a
}

// add queues cids for announcing.
func (a *announcer) add(cids []cid.Cid) {
	if len(cids) == 0 {
		return
	}
	a.mu.Lock()
	a.queue = append(a.queue, cids...)
	a.pending += len(cids)
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// status reports CIDs announced so far and those still waiting.
func (a *announcer) status() (done uint64, pending int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.done, a.pending
}

func (a *announcer) run() {
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-a.wake:
		}
		for {
			a.mu.Lock()
			batch := a.queue
			a.queue = nil
			a.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			// Announcing with an empty routing table fails every CID:
			// wait for a peer instead (a lone node has nobody to tell).
			if a.d.WaitRouting(a.ctx, 1) != nil {
				return
			}
			start := time.Now()
			err := a.d.Provide(a.ctx, batch)
			a.mu.Lock()
			a.done += uint64(len(batch))
			a.pending -= len(batch)
			a.mu.Unlock()
			if a.ctx.Err() != nil {
				return
			}
			if err != nil {
				a.log.Warn("some announcements failed", "cids", len(batch), "err", err)
			} else {
				a.log.Debug("announced", "cids", len(batch), "took", time.Since(start))
			}
		}
	}
}

// close stops announcing; what is queued is left to the next reprovide.
func (a *announcer) close() {
	a.cancel()
	a.wg.Wait()
}
