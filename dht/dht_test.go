package dht_test

import (
	"context"
	"errors"
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

// network starts n hosts with DHTs in the default options, bootstrapped
// off the first: on loopback only the LAN DHT has peers.
func network(t testing.TB, n int) ([]host.Host, []*dht.DHT) {
	t.Helper()
	var hosts []host.Host
	var dhts []*dht.DHT
	for i := range n {
		h := p2ptest.NewHost(t)
		opts := dht.DefaultOptions()
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

// TestDefaultModeOnLoopback is what a user with the default config gets on
// one machine or a LAN: the LAN DHT serves at once, the WAN DHT (no public
// peers) stays an empty client, and announcing and finding work.
func TestDefaultModeOnLoopback(t *testing.T) {
	hosts, dhts := network(t, 3)
	for i, d := range dhts {
		st := d.Status()
		if len(st) != 2 || st[0].Name != "lan" || st[1].Name != "wan" {
			t.Fatalf("node %d: status %+v, want lan then wan", i, st)
		}
		if st[0].Mode != "server" || st[0].Peers == 0 {
			t.Errorf("node %d: LAN DHT %+v, want a server with peers", i, st[0])
		}
		if st[1].Mode != "client" || st[1].Peers != 0 {
			t.Errorf("node %d: WAN DHT %+v, want an empty client on loopback", i, st[1])
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := someCIDs(1)[0]
	if err := dhts[1].Provide(ctx, []cid.Cid{c}); err != nil {
		t.Fatal(err)
	}
	var got []peer.ID
	for p := range dhts[2].FindProviders(ctx, c, 0) {
		got = append(got, p.ID)
		if len(p.Addrs) == 0 {
			t.Errorf("provider %s came without addresses (loopback filtered out?)", p.ID)
		}
	}
	if len(got) != 1 || got[0] != hosts[1].ID() {
		t.Fatalf("providers %v, want [%s]", got, hosts[1].ID())
	}
}

// TestWANClientStillServesLAN: dht_mode client is about the WAN; the LAN
// DHT answers all the same.
func TestWANClientStillServesLAN(t *testing.T) {
	opts := dht.DefaultOptions()
	opts.Mode = dht.ModeClient
	d, err := dht.New(p2ptest.NewHost(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	st := d.Status()
	if st[0].Mode != "server" || st[1].Mode != "client" {
		t.Fatalf("status %+v, want LAN server and WAN client", st)
	}
}

func TestProvideWithoutPeersSaysSo(t *testing.T) {
	d, err := dht.New(p2ptest.NewHost(t), dht.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Provide(context.Background(), someCIDs(1)); !errors.Is(err, dht.ErrNoPeers) {
		t.Fatalf("provide with no peers: %v, want ErrNoPeers", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
