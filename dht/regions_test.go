package dht

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/pieces"
)

// keyspace is a simulated network: n peers, and exact lookups of the
// bucketSize closest, as a converged Kademlia lookup returns.
type keyspace struct {
	peers []peer.ID
	keys  []kb.ID
}

const bucketSize = 20

func newKeyspace(n int) *keyspace {
	ks := &keyspace{}
	for i := range n {
		p := peer.ID(fmt.Sprintf("simulated peer %d", i))
		ks.peers, ks.keys = append(ks.peers, p), append(ks.keys, kb.ConvertPeerID(p))
	}
	return ks
}

// closest returns the k peers of among (indexes into ks) closest to key.
func (ks *keyspace) closest(key kb.ID, among []int, k int) []int {
	type near struct {
		d [32]byte
		i int
	}
	var best []near // sorted, at most k
	for _, i := range among {
		var n near
		n.i = i
		for j := range n.d {
			n.d[j] = key[j] ^ ks.keys[i][j]
		}
		if len(best) == k && bytes.Compare(n.d[:], best[k-1].d[:]) >= 0 {
			continue
		}
		at, _ := slices.BinarySearchFunc(best, n, func(a, b near) int { return bytes.Compare(a.d[:], b.d[:]) })
		best = slices.Insert(best, at, n)
		if len(best) > k {
			best = best[:k]
		}
	}
	out := make([]int, len(best))
	for j, n := range best {
		out[j] = n.i
	}
	return out
}

func (ks *keyspace) lookup(_ context.Context, key string) ([]peer.ID, error) {
	all := make([]int, len(ks.peers))
	for i := range all {
		all[i] = i
	}
	var out []peer.ID
	for _, i := range ks.closest(kb.ConvertKey(key), all, bucketSize) {
		out = append(out, ks.peers[i])
	}
	return out, nil
}

// coldTableSize is the routing table a node of an n-peer network holds
// before any lookup has warmed kad's size estimate: full buckets near the
// root, then the expected count of each deeper one.
func coldTableSize(n int) int {
	size := 0
	for cpl := 0; n>>(cpl+1) > 0; cpl++ {
		size += min(bucketSize, n>>(cpl+1))
	}
	return size
}

// TestBatchReachesClosestPeers: 1,025 CIDs (a 1 GiB file) announced in
// networks of 200 and 10,000 peers, with regions started from a cold
// estimate (the routing table's size) and from nothing at all: at least
// 95% of the CIDs reach at least 15 of their 20 closest peers, with about
// one lookup per CID or fewer. Before regions were split by what lookups
// return, 880 of 1,025 CIDs reached none of their closest peers in the
// 10,000-peer network.
func TestBatchReachesClosestPeers(t *testing.T) {
	cids := make([]cid.Cid, 1025)
	for i := range cids {
		cids[i] = pieces.SHA2_256.Sum(pieces.CodecRaw, []byte(fmt.Sprint("chunk ", i)))
	}
	for _, n := range []int{200, 10_000} {
		ks := newKeyspace(n)
		starts := []struct {
			name string
			bits int
		}{{"cold estimate", regionBitsFor(coldTableSize(n) + 1)}, {"no estimate", 0}}
		if n > 1000 {
			starts = starts[:1] // splits as from nothing; one run keeps -race quick
		}
		for _, start := range starts {
			t.Run(fmt.Sprintf("%d peers, %s", n, start.name), func(t *testing.T) {
				found, lookups, errs := gatherPeers(context.Background(), cids, start.bits, 8, ks.lookup)
				if len(errs) > 0 {
					t.Fatal(errs)
				}
				idx := make(map[peer.ID]int, n)
				for i, p := range ks.peers {
					idx[p] = i
				}
				var candidates, all []int
				for _, p := range found {
					candidates = append(candidates, idx[p])
				}
				for i := range ks.peers {
					all = append(all, i)
				}
				good, worst := 0, bucketSize
				for _, c := range cids {
					key := kb.ConvertKey(string(c.Hash()))
					want := ks.closest(key, all, bucketSize)
					got := ks.closest(key, candidates, bucketSize)
					reached := 0
					for _, i := range got {
						if slices.Contains(want, i) {
							reached++
						}
					}
					if reached >= 15 {
						good++
					}
					worst = min(worst, reached)
				}
				t.Logf("start at %d bits: %d lookups, %d peers found, %d of %d CIDs reach >= 15 of their 20 closest (worst %d)",
					start.bits, lookups, len(found), good, len(cids), worst)
				if good*100 < 95*len(cids) {
					t.Fatalf("only %d of %d CIDs reach at least 15 of their 20 closest peers", good, len(cids))
				}
				if lookups > len(cids) {
					t.Fatalf("%d lookups for %d CIDs: batching costs more than a lookup each", lookups, len(cids))
				}
			})
		}
	}
}
