package node

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/exchange"
)

// Discovery tuning, each with why.
const (
	// lookupEvery spaces the DHT lookups a download starts for the pieces
	// it is fetching, so holders that appear mid-download join in without
	// a lookup per piece.
	lookupEvery = 2 * time.Second
	// probeTimeout bounds asking one connected peer whether it holds a file.
	probeTimeout = 2 * time.Second
	// maxProbes bounds how many connected peers one download asks.
	maxProbes = 64
)

// signalLocked wakes fetches waiting for holders.
func (g *netGetter) signalLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// discover finds holders. On the first miss, at once and side by side: it
// asks the connected peers whether they hold the root, keeps asking peers
// as they connect (a node just started is still dialling its bootstrap
// peers), and looks the root up in the DHT as soon as a routing table has
// a peer. Later, now and then, it looks up the piece being fetched, so
// holders that appear during a long download join it.
func (g *netGetter) discover(c cid.Cid) {
	g.once.Do(func() {
		g.started.Store(true)
		g.watchConnects()
		g.startLookup(g.probeConnected)
		g.startLookup(func() { g.findOnceRouted(g.root) })
		if b := g.inBucket(); b != nil {
			// The bucket's holders may hold the file, or come to.
			g.startLookup(func() { g.findOnceRouted(bucket.HoldersKey(*b)) })
		}
	})
	g.mu.Lock()
	due := c != g.root && g.lookups == 0 && time.Since(g.lastLookup) > lookupEvery
	g.mu.Unlock()
	if due {
		g.startLookup(func() { g.findProviders(c) })
	}
}

// findOnceRouted looks c up once a routing table has a peer (or after
// FindTimeout).
func (g *netGetter) findOnceRouted(c cid.Cid) {
	ctx, cancel := context.WithTimeout(g.ctx, g.n.opts.FindTimeout)
	g.n.waitRouting(ctx)
	cancel()
	g.findProviders(c)
}

func (g *netGetter) startLookup(fn func()) {
	g.mu.Lock()
	g.lookups++
	g.lastLookup = time.Now()
	g.mu.Unlock()
	g.wg.Go(func() {
		fn()
		g.mu.Lock()
		g.lookups--
		g.signalLocked()
		g.mu.Unlock()
	})
}

func (g *netGetter) addHolder(ai peer.AddrInfo) {
	if ai.ID == g.n.host.ID() {
		return
	}
	if len(ai.Addrs) > 0 {
		g.n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
	}
	g.fetcher.AddHolders(ai.ID)
	g.mu.Lock()
	g.signalLocked()
	g.mu.Unlock()
}

// findProviders adds the DHT's providers of c as holders, counting the
// peers the lookup asks.
func (g *netGetter) findProviders(c cid.Cid) {
	ctx, cancel := context.WithCancel(g.ctx)
	defer cancel()
	ctx, events := routing.RegisterForQueryEvents(ctx)
	var counted sync.WaitGroup
	counted.Go(func() {
		for ev := range events {
			if ev.Type == routing.SendingQuery {
				g.asked.Add(1)
			}
		}
	})
	for ai := range g.n.dht.FindProviders(ctx, c, 0) {
		g.addHolder(ai)
	}
	cancel()
	counted.Wait()
}

// probeConnected asks the connected peers of the cluster whether they hold
// the root, all at once: those that do become holders.
func (g *netGetter) probeConnected() {
	var wg sync.WaitGroup
	for _, p := range g.n.host.Network().Peers() {
		wg.Go(func() { g.probe(p) })
	}
	wg.Wait()
}

// watchConnects probes each peer that finishes identification while the
// download runs, so a holder that connects after the download started is
// used as soon as it can answer.
func (g *netGetter) watchConnects() {
	sub, err := g.n.host.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		g.n.log.Debug("cannot watch for new peers", "err", err)
		return
	}
	g.wg.Go(func() {
		defer sub.Close()
		for {
			select {
			case <-g.ctx.Done():
				return
			case ev := <-sub.Out():
				id := ev.(event.EvtPeerIdentificationCompleted)
				if slices.Contains(id.Protocols, exchange.ProtocolID(g.n.Cluster())) {
					g.wg.Go(func() { g.probe(id.Peer) })
				}
			}
		}
	})
}

// probe asks p for one byte of the root, once per download and for at
// most maxProbes peers. Asking is cheaper than making every piece request
// try peers that lack the file.
func (g *netGetter) probe(p peer.ID) {
	if ok, _ := g.n.host.Peerstore().SupportsProtocols(p, exchange.ProtocolID(g.n.Cluster())); len(ok) == 0 {
		return
	}
	g.mu.Lock()
	if g.probed[p] || len(g.probed) >= maxProbes {
		g.mu.Unlock()
		return
	}
	g.probed[p] = true
	g.mu.Unlock()
	g.asked.Add(1)
	ctx, cancel := context.WithTimeout(g.ctx, probeTimeout)
	defer cancel()
	s, release, err := g.n.pool.Session(ctx, p, g.guestGrant()) // shared: many reads at once probe over one stream
	if err != nil {
		return
	}
	defer release()
	// Only a byte served makes p a holder: the probe carries no grant,
	// which goes only to holders the DHT names, and a refusal proves
	// nothing (a rogue peer may refuse anything).
	if _, err := s.GetRangeUnverified(ctx, g.root, 0, 1); err == nil {
		g.addHolder(peer.AddrInfo{ID: p})
	}
}
