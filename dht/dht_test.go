package dht_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/dht"
	"github.com/ddc-project/ddc/internal/p2ptest"
	"github.com/ddc-project/ddc/pieces"
)

// network starts n hosts with DHTs bootstrapped off the first.
func network(t testing.TB, n int) ([]host.Host, []*dht.DHT) {
	t.Helper()
	var hosts []host.Host
	var dhts []*dht.DHT
	for i := range n {
		h := p2ptest.NewHost(t)
		opts := dht.DefaultOptions()
		opts.Mode = dht.ModeServer
		if i > 0 {
			opts.Bootstrap = []peer.AddrInfo{p2ptest.Info(hosts[0])}
		}
		d, err := dht.New(h, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		hosts, dhts = append(hosts, h), append(dhts, d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, d := range dhts[1:] {
		if err := d.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range dhts {
		if err := d.WaitRouting(ctx, min(n-1, 3)); err != nil {
			t.Fatal(err)
		}
	}
	return hosts, dhts
}

func someCIDs(n int) []cid.Cid {
	out := make([]cid.Cid, n)
	for i := range out {
		out[i] = pieces.SHA2_256.Sum(pieces.CodecRaw, []byte(fmt.Sprint("piece ", i)))
	}
	return out
}

func TestProvideAndFind(t *testing.T) {
	hosts, dhts := network(t, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cids := someCIDs(50)
	if err := dhts[3].Provide(ctx, cids); err != nil {
		t.Fatal(err)
	}
	for _, c := range cids[:10] {
		found := false
		for p := range dhts[7].FindProviders(ctx, c, 1) {
			if p.ID == hosts[3].ID() {
				found = true
			}
		}
		if !found {
			t.Fatalf("node 7 did not find node 3 as the holder of %s", c)
		}
	}
	// Nobody holds this one: the lookup ends, empty, well before the deadline.
	lctx, lcancel := context.WithTimeout(ctx, 20*time.Second)
	defer lcancel()
	for p := range dhts[5].FindProviders(lctx, pieces.SHA2_256.Sum(pieces.CodecRaw, []byte("nobody")), 1) {
		t.Fatalf("found a provider %s of a CID nobody announced", p.ID)
	}
	if lctx.Err() != nil {
		t.Fatal("an empty lookup ran to the deadline")
	}
}

func TestClustersDoNotMix(t *testing.T) {
	a, err := dht.New(p2ptest.NewHost(t), dht.Options{Cluster: "", ProvideConcurrency: 1, ReprovideInterval: time.Hour})
	if err == nil {
		a.Close()
		t.Fatal("empty cluster accepted")
	}
	if dht.Prefix("red") == dht.Prefix("blue") {
		t.Fatal("two clusters share a protocol prefix")
	}
}
