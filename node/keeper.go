package node

import (
	"fmt"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
)

// What a read fetches is kept: a keeper goroutine appends each verified
// piece to a store transaction as the download goes on, and the reader's
// close commits it and queues it for announcing.

type kept struct {
	c       cid.Cid
	data    []byte
	via     *bucket.ID // the bucket the holder served c for; nil: as a piece of no bucket
	replace bool       // the store holds a corrupt copy of c
}

// keepDepth bounds the fetched pieces waiting to be stored, and so the
// memory a slow disk can make a download hold.
const keepDepth = 16

// syncEvery is how many fetched bytes the keeper stores between syncs of
// what it has written, so the device flushes during the download and the
// commit at the end has little left to wait for.
const syncEvery = 64 << 20

// keep hands a fetched piece to the keeper goroutine, which stores it
// while the download goes on; it is committed at close. The reader gets
// data too and may offer it back as a buffer, which ReadPiece then refuses
// until the keeper is done with it.
func (g *netGetter) keep(k kept) {
	g.mu.Lock()
	if g.closed || len(k.data) == 0 {
		g.mu.Unlock()
		return
	}
	if g.placing && k.c.Type() == pieces.CodecRaw {
		// Kept in place where the output is written (keepPlaced), with
		// the bucket the holder served it for.
		if g.fetchedData == nil {
			g.fetchedData = make(map[string]*bucket.ID)
		}
		g.fetchedData[k.c.KeyString()] = k.via
		g.mu.Unlock()
		return
	}
	if g.keepq == nil {
		g.keepq, g.keeper = make(chan kept, keepDepth), make(chan struct{})
		g.keeping = make(map[*byte]bool)
		go g.runKeeper(g.keepq)
	}
	g.keeping[&k.data[0]] = true
	q := g.keepq
	g.mu.Unlock()
	q <- k
}

func (g *netGetter) runKeeper(q <-chan kept) {
	defer close(g.keeper)
	var syncs sync.WaitGroup // at most one sync at a time
	defer syncs.Wait()
	var since int
	for k := range q {
		g.store(k)
		if since += len(k.data); since >= syncEvery && g.keepErr == nil {
			since = 0
			syncs.Wait()
			syncs.Go(func() { g.n.repo.Store.SyncWritten() }) // a failure stops writes; Commit reports it
		}
		g.mu.Lock()
		delete(g.keeping, &k.data[0])
		g.mu.Unlock()
	}
}

func (g *netGetter) store(k kept) {
	if g.keepErr != nil {
		return
	}
	if g.tx == nil {
		g.tx = g.n.begin(g.inBucket())
	}
	if k.replace {
		// Drop the corrupt copy from the index so the good one is stored;
		// until the commit, the store lacks c rather than holding it bad.
		if err := g.n.repo.Store.Delete(k.c); err != nil {
			g.n.log.Warn("cannot replace corrupt local copy", "cid", k.c, "err", err)
			return
		}
	}
	err := g.putFetched(g.tx, k.c, k.via, func(in store.Bucket) error { return g.tx.PutPieceIn(k.c, k.data, in) })
	if err != nil {
		g.keepErr = err
		g.n.log.Warn("cannot keep fetched pieces; the download goes on without storing them", "cid", k.c, "err", err)
		return
	}
	g.kept = append(g.kept, k.c)
}

// cacheRoot records the file read as cache in tx when the read was no
// pinning one and kept pieces there: what a quota may evict.
func (g *netGetter) cacheRoot(tx *store.Tx, pin bool, kept int) {
	if !pin && kept > 0 && g.root.Type() == pieces.CodecDagCBOR {
		tx.Cache(g.root)
	}
}

// viaBucket is the store's bucket of a holder's via: none for nil.
func viaBucket(via *bucket.ID) store.Bucket {
	if via == nil {
		return store.NoBucket
	}
	return store.Bucket(*via)
}

// close stops discovery, waits for the keeper and commits what it kept.
// The reader's fetches are over by now: no keep comes after.
func (g *netGetter) close() error {
	g.cancel()
	g.wg.Wait()
	var served []peer.ID
	for p, st := range g.fetcher.Stats() {
		if st.Banned == nil && st.Pieces > 0 {
			served = append(served, p)
		}
	}
	if len(served) > 0 {
		g.n.holders.put(g.root, served)
	}
	g.fetcher.Close()
	g.mu.Lock()
	g.closed = true
	q, pin, place := g.keepq, g.pin, g.place
	g.mu.Unlock()
	if q != nil {
		close(q)
		<-g.keeper
	}
	if place != nil {
		g.keepPlaced(place, pin)
	}
	if pinned, _ := g.n.repo.Store.Pinned(g.root); pin && !pinned { // a pinned root needs no write: a full disk does not fail its get
		if has, _ := g.n.repo.Store.Has(g.root); has || g.tx != nil {
			if g.tx == nil {
				g.tx = g.n.begin(g.inBucket())
			}
			g.tx.Pin(g.root)
		}
	}
	committed := false
	if g.tx != nil && g.keepErr != nil {
		g.tx.Discard() // reported when it happened; the reader got its bytes
	} else if g.tx != nil {
		g.cacheRoot(g.tx, pin, len(g.kept))
		if err := g.tx.Commit(); err != nil {
			err = fmt.Errorf("keep pieces of %s: %w", g.root, err)
			if pin {
				return err // the pin is what was asked for
			}
			g.n.log.Warn("cannot keep the fetched pieces; the reader got its bytes", "err", err)
		} else {
			committed = true
		}
	}
	var ann []cid.Cid
	if committed {
		ann = g.kept
	}
	ann = append(ann, g.keptPlaced...)
	if g.share && len(ann) > 0 { // in the store now: other reads find them there
		keys := make([]string, len(ann))
		for i, c := range ann {
			keys[i] = flightKey(c, g.in)
		}
		g.n.flights.forget(keys)
	}
	if len(ann) == 0 {
		return nil
	}
	g.n.nudgeQuota()
	if b := g.inBucket(); b != nil && !g.keptIn[*b] {
		ann = append(ann, bucket.HoldersKey(*b))
	}
	for b := range g.keptIn {
		ann = append(ann, bucket.HoldersKey(b))
		g.n.records.learn(b) // the access rule will need it
	}
	g.n.ann.add(ann)
	return nil
}

// begin starts a store transaction in bucket b (none when nil).
func (n *Node) begin(b *bucket.ID) *store.Tx {
	tx := n.repo.Store.Begin()
	if b != nil {
		tx.InBucket(store.Bucket(*b))
	}
	return tx
}
