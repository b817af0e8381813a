package dht

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"sync"

	"github.com/ipfs/go-cid"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"
)

// regionPeers is how many nodes a keyspace region should hold on average:
// half a bucket, so that one lookup of a key in the region returns every
// node in it together with the nearest ones around it.
const regionPeers = 10

// provideBatched announces many CIDs with one lookup per keyspace region
// instead of one per CID. It sorts the CIDs by region (the leading bits of
// their Kademlia key), finds the closest peers of one key in each region,
// and from the union of those peers sends each CID's record to the bucket
// size of peers closest to it, as a lookup of that CID would have found.
func (d *DHT) provideBatched(ctx context.Context, kad *kaddht.IpfsDHT, cids []cid.Cid) error {
	pm, err := pb.NewProtocolMessenger(kad.MessageSender())
	if err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	self := peer.AddrInfo{ID: d.h.ID(), Addrs: kad.FilteredAddrs()}
	for _, c := range cids {
		if err := kad.ProviderStore().AddProvider(ctx, c.Hash(), peer.AddrInfo{ID: self.ID}); err != nil {
			return fmt.Errorf("announce %s locally: %w", c, err)
		}
	}

	prefix := regionBits(kad)
	regions := make(map[uint64][]cid.Cid)
	for _, c := range cids {
		k := kb.ConvertKey(string(c.Hash()))
		r := uint64(0)
		for i := range prefix {
			r = r<<1 | uint64(k[i/8]>>(7-i%8)&1)
		}
		regions[r] = append(regions[r], c)
	}

	// One lookup per region, ProvideConcurrency at a time.
	var mu sync.Mutex
	found := make(map[peer.ID]struct{})
	var lookupErrs []error
	sem := make(chan struct{}, d.opts.ProvideConcurrency)
	var wg sync.WaitGroup
	for _, members := range regions {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			lctx, cancel := context.WithTimeout(ctx, provideTimeout)
			defer cancel()
			ps, err := kad.GetClosestPeers(lctx, string(members[0].Hash()))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				lookupErrs = append(lookupErrs, err)
			}
			for _, p := range ps {
				found[p] = struct{}{}
			}
		})
	}
	wg.Wait()
	if len(found) == 0 {
		return fmt.Errorf("announce %d CIDs: no peers found: %w", len(cids), errors.Join(lookupErrs...))
	}
	candidates := make([]peer.ID, 0, len(found))
	for p := range found {
		candidates = append(candidates, p)
	}

	// Each CID to its closest peers; a CID counts as announced when at
	// least one of them took the record.
	var errs []error
	for _, c := range cids {
		target := kb.ConvertKey(string(c.Hash()))
		closest := kb.SortClosestPeers(append([]peer.ID(nil), candidates...), target)
		closest = closest[:min(len(closest), kad.BucketSize())]
		stored := 0
		var lastErr error
		var cwg sync.WaitGroup
		for _, p := range closest {
			sem <- struct{}{}
			cwg.Go(func() {
				defer func() { <-sem }()
				pctx, cancel := context.WithTimeout(ctx, provideTimeout)
				defer cancel()
				err := pm.PutProviderAddrs(pctx, p, c.Hash(), self)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					stored++
				} else {
					lastErr = err
				}
			})
		}
		cwg.Wait()
		if stored == 0 {
			errs = append(errs, fmt.Errorf("announce %s: no peer took the record: %v", c, lastErr))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// regionBits is how many leading key bits make a region of about
// regionPeers nodes, from the size of the network as kad's routing table
// sees it.
func regionBits(kad *kaddht.IpfsDHT) int {
	n := kad.RoutingTable().Size() + 1
	if est, err := kad.NetworkSize(); err == nil && int(est) > n {
		n = int(est)
	}
	if n <= regionPeers {
		return 0
	}
	return min(bits.Len(uint(n/regionPeers)), 16)
}
