package dht

import (
	"context"
	"math/bits"
	"sync"

	"github.com/ipfs/go-cid"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"
)

// regionPeers is how many nodes a keyspace region may hold: half a bucket,
// so that one lookup of a key in the region returns every node in it
// together with the nearest ones around it.
const regionPeers = 10

// maxRegionBits bounds how deep regions are split: 2^24 regions of ten
// nodes is a network far larger than any there is.
const maxRegionBits = 24

// lookupFunc returns the peers closest to key, as kad's GetClosestPeers.
type lookupFunc func(ctx context.Context, key string) ([]peer.ID, error)

// region is the CIDs of a batch whose keys share their first bits bits.
type region struct {
	bits int
	cids []cid.Cid
	keys []kb.ID // the CIDs' Kademlia keys
}

// gatherer finds the peers a batch of CIDs must be announced to.
type gatherer struct {
	ctx    context.Context
	lookup lookupFunc
	sem    chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	found   map[peer.ID]struct{}
	lookups int
	errs    []error
}

// gatherPeers finds, with about one lookup per keyspace region, a set of
// peers among which lie the closest peers of every CID in cids. Regions
// start at startBits leading key bits (from the network's estimated size)
// and each is explored with a lookup of its first CID's key. A lookup that
// returns regionPeers or more peers inside the region means the region
// holds more nodes than one lookup sees: it is split in two, the half
// holding the looked-up key keeps that lookup's answer, and the other half
// (if it has CIDs) gets a lookup of its own. So the estimate only sets
// where splitting starts: when it is cold or wrong, the batch costs more
// lookups, never worse placement. It returns the peers found, how many
// lookups ran, and the errors of those that failed.
func gatherPeers(ctx context.Context, cids []cid.Cid, startBits, concurrency int, lookup lookupFunc) ([]peer.ID, int, []error) {
	g := &gatherer{ctx: ctx, lookup: lookup, sem: make(chan struct{}, concurrency), found: make(map[peer.ID]struct{})}
	byPrefix := make(map[uint64]*region)
	for _, c := range cids {
		k := kb.ConvertKey(string(c.Hash()))
		p := prefix(k, startBits)
		r := byPrefix[p]
		if r == nil {
			r = &region{bits: startBits}
			byPrefix[p] = r
		}
		r.cids, r.keys = append(r.cids, c), append(r.keys, k)
	}
	for _, r := range byPrefix {
		g.wg.Go(func() { g.explore(*r, nil) })
	}
	g.wg.Wait()
	peers := make([]peer.ID, 0, len(g.found))
	for p := range g.found {
		peers = append(peers, p)
	}
	return peers, g.lookups, g.errs
}

// explore makes sure the closest peers of r's CIDs are found: ps is the
// answer to a lookup of r.keys[0], or nil when none ran yet.
func (g *gatherer) explore(r region, ps []peer.ID) {
	if ps == nil {
		if g.ctx.Err() != nil {
			return
		}
		g.sem <- struct{}{}
		found, err := g.lookup(g.ctx, string(r.cids[0].Hash()))
		<-g.sem
		g.mu.Lock()
		g.lookups++
		if err != nil {
			g.errs = append(g.errs, err)
		}
		for _, p := range found {
			g.found[p] = struct{}{}
		}
		g.mu.Unlock()
		if ps = found; ps == nil {
			ps = []peer.ID{}
		}
	}
	if len(r.cids) == 1 || r.bits >= maxRegionBits {
		return // the lookup was of this CID's own key, or deep enough
	}
	inside := 0
	for _, p := range ps {
		if kb.CommonPrefixLen(kb.ConvertPeerID(p), r.keys[0]) >= r.bits {
			inside++
		}
	}
	if inside < regionPeers {
		return
	}
	// Split on the next bit: the half holding keys[0] keeps ps.
	same, other := region{bits: r.bits + 1}, region{bits: r.bits + 1}
	want := bit(r.keys[0], r.bits)
	for i, k := range r.keys {
		h := &other
		if bit(k, r.bits) == want {
			h = &same
		}
		h.cids, h.keys = append(h.cids, r.cids[i]), append(h.keys, k)
	}
	if len(other.cids) > 0 {
		g.wg.Go(func() { g.explore(other, nil) })
	}
	g.explore(same, ps)
}

// bit returns bit i of k, from the most significant.
func bit(k kb.ID, i int) byte { return k[i/8] >> (7 - i%8) & 1 }

// prefix returns the first n bits of k as a number.
func prefix(k kb.ID, n int) uint64 {
	var p uint64
	for i := range n {
		p = p<<1 | uint64(bit(k, i))
	}
	return p
}

// regionBitsFor is how many leading key bits make a region of about
// regionPeers nodes in a network of n.
func regionBitsFor(n int) int {
	if n <= regionPeers {
		return 0
	}
	return min(bits.Len(uint(n/regionPeers)), maxRegionBits)
}
