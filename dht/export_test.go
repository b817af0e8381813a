package dht

import (
	"context"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// HoldsRecord reports whether d's LAN table stores a provider record of c
// naming provider.
func HoldsRecord(d *DHT, c cid.Cid, provider peer.ID) bool {
	ps, err := d.dual.LAN.ProviderStore().GetProviders(context.Background(), c.Hash())
	if err != nil {
		return false
	}
	for _, p := range ps {
		if p.ID == provider {
			return true
		}
	}
	return false
}

// RoutingPeers returns the peers in d's LAN routing table.
func RoutingPeers(d *DHT) []peer.ID { return d.dual.LAN.RoutingTable().ListPeers() }
