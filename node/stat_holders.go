package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/pieces"
)

// Holders limits, each with why.
const (
	// holderLookups is how many pieces' providers are looked up at once:
	// a file of a thousand pieces is listed in seconds, and the DHT is
	// not flooded by one command.
	holderLookups = 16
	// holderWait bounds one piece's provider lookup.
	holderWait = 10 * time.Second
	// holdersListed is how many providers of a piece are listed: more
	// than any factor a bucket may ask for (16).
	holdersListed = 20
)

// PieceHolders is a piece of a file and the nodes the DHT names as its
// providers (this node first when it holds the piece).
type PieceHolders struct {
	Index   int         // its place in the tree's walk, the root's 0
	Link    pieces.Link // the piece, and the content bytes under it
	Data    bool        // a data piece, not a descriptor
	Holders []peer.ID
}

// FileHolders is who keeps a file of a bucket, as the nodes themselves
// say (a push that only checks), nearest the root first.
type FileHolders struct {
	Replicas int // the bucket's factor; 0 for a file outside buckets
	Keepers  []peer.ID
}

// Holders lists who holds the file c: each piece, to each as it is looked
// up (in no order), with its providers in the DHT; then, for a file of a
// bucket, the nodes closest to its root that say they keep it. Reading
// the descriptors is a read like any other, under in's grant.
func (n *Node) Holders(ctx context.Context, c cid.Cid, in *In, each func(PieceHolders)) (FileHolders, error) {
	var links []PieceHolders
	g := n.newGetter(c, in)
	if err := g.enter(ctx); err != nil {
		return FileHolders{}, errors.Join(err, g.close())
	}
	_, err := pieces.WalkFile(ctx, g, c, func(l pieces.Link, data bool) {
		links = append(links, PieceHolders{Index: len(links), Link: l, Data: data})
	})
	if err := errors.Join(err, g.close()); err != nil {
		return FileHolders{}, err
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, holderLookups)
	for _, ph := range links {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			lctx, cancel := context.WithTimeout(ctx, holderWait)
			defer cancel()
			for ai := range n.Providers(lctx, ph.Link.CID) {
				ph.Holders = append(ph.Holders, ai.ID)
				if len(ph.Holders) == holdersListed {
					cancel()
				}
			}
			mu.Lock()
			defer mu.Unlock()
			each(ph)
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return FileHolders{}, err
	}

	if !in.inBucket() {
		return FileHolders{}, nil
	}
	rec, err := n.record(ctx, in)
	if err != nil {
		return FileHolders{}, err
	}
	keepers, _, _, err := n.keepers(ctx, rec, c, 0, false, nil)
	return FileHolders{Replicas: rec.Replicas, Keepers: keepers}, err
}
