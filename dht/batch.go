package dht

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ipfs/go-cid"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"
)

// provideBatched announces many CIDs with about one lookup per keyspace
// region instead of one per CID. It finds the peers around every CID's key
// (gatherPeers), and from them sends each CID's record to the bucket size
// of peers closest to it, as a lookup of that CID would have found.
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

	lookup := func(ctx context.Context, key string) ([]peer.ID, error) {
		lctx, cancel := context.WithTimeout(ctx, provideTimeout)
		defer cancel()
		return kad.GetClosestPeers(lctx, key)
	}
	candidates, lookups, lookupErrs := gatherPeers(ctx, cids, regionBits(kad), d.opts.ProvideConcurrency, lookup)
	d.log.Debug("announce: peers gathered", "cids", len(cids), "lookups", lookups, "peers", len(candidates))
	if len(candidates) == 0 {
		if err := errors.Join(lookupErrs...); err != nil {
			return fmt.Errorf("announce %d CIDs: no peers found: %w", len(cids), err)
		}
		return fmt.Errorf("announce %d CIDs: no peers found (the routing table is empty)", len(cids))
	}
	var mu sync.Mutex
	sem := make(chan struct{}, d.opts.ProvideConcurrency)

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

// regionBits is where gatherPeers starts splitting the keyspace: regions
// of about regionPeers nodes in the network as kad estimates its size, or,
// while that estimate is cold, as large as the routing table (which
// underestimates a large network: gatherPeers then splits further).
func regionBits(kad *kaddht.IpfsDHT) int {
	n := kad.RoutingTable().Size() + 1
	if est, err := kad.NetworkSize(); err == nil && int(est) > n {
		n = int(est)
	}
	return regionBitsFor(n)
}
