package dht

import (
	"context"

	"github.com/ipfs/go-cid"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	record "github.com/libp2p/go-libp2p-record"
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

// PutRawRecord sends value under key straight to p's LAN table, past this
// node's own checks, as a lying peer would.
func PutRawRecord(ctx context.Context, d *DHT, p peer.ID, key string, value []byte) error {
	pm, err := pb.NewProtocolMessenger(d.dual.LAN.MessageSender())
	if err != nil {
		return err
	}
	return pm.PutValue(ctx, p, record.MakePutRecord(key, value))
}
