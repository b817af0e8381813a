package dht_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/dht"
	"github.com/ddc-project/ddc/internal/p2ptest"
	"github.com/ddc-project/ddc/pieces"
)

// network starts n hosts with DHTs in the default options, bootstrapped
// off the first: on loopback only the LAN DHT has peers.
func network(t testing.TB, n int) ([]host.Host, []*dht.DHT) {
	return clusterNetwork(t, n, dht.DefaultOptions().Cluster)
}

// clusterNetwork is network in the given cluster.
func clusterNetwork(t testing.TB, n int, cluster string) ([]host.Host, []*dht.DHT) {
	t.Helper()
	var hosts []host.Host
	var dhts []*dht.DHT
	for i := range n {
		h := p2ptest.NewHost(t)
		opts := dht.DefaultOptions()
		opts.Cluster = cluster
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

// TestProvideAndFind: 300 CIDs announced in a 30-node network take the
// batched path (regions of the keyspace, see gatherPeers); at least 95%
// of them reach at least 15 of their 20 closest nodes, and another node
// finds their holder.
func TestProvideAndFind(t *testing.T) {
	hosts, dhts := network(t, 30)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cids := someCIDs(300)
	if err := dhts[3].Provide(ctx, cids); err != nil {
		t.Fatal(err)
	}
	var others []peer.ID
	byID := make(map[peer.ID]*dht.DHT)
	for i, h := range hosts {
		if i != 3 {
			others = append(others, h.ID())
			byID[h.ID()] = dhts[i]
		}
	}
	good := 0
	for _, c := range cids {
		closest := kb.SortClosestPeers(slices.Clone(others), kb.ConvertKey(string(c.Hash())))[:20]
		held := 0
		for _, p := range closest {
			if dht.HoldsRecord(byID[p], c, hosts[3].ID()) {
				held++
			}
		}
		if held >= 15 {
			good++
		}
	}
	if good*100 < 95*len(cids) {
		t.Fatalf("%d of %d CIDs reached at least 15 of their 20 closest nodes", good, len(cids))
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

// TestClustersDoNotMix: two clusters of three nodes, every node of one
// connected to every node of the other. Neither takes the other's nodes
// into its routing table, and a CID announced in one is not found from
// the other.
func TestClustersDoNotMix(t *testing.T) {
	a, err := dht.New(p2ptest.NewHost(t), dht.Options{Cluster: "", ProvideConcurrency: 1, ReprovideInterval: time.Hour})
	if err == nil {
		a.Close()
		t.Fatal("empty cluster accepted")
	}
	redHosts, red := clusterNetwork(t, 3, "red")
	blueHosts, blue := clusterNetwork(t, 3, "blue")
	for _, r := range redHosts {
		for _, b := range blueHosts {
			p2ptest.Connect(t, r, b)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := someCIDs(1)[0]
	if err := red[0].Provide(ctx, []cid.Cid{c}); err != nil {
		t.Fatal(err)
	}
	found := 0
	for range red[2].FindProviders(ctx, c, 1) {
		found++
	}
	if found != 1 {
		t.Fatalf("red found %d holders of a CID announced in red, want 1", found)
	}
	for p := range blue[1].FindProviders(ctx, c, 1) {
		t.Fatalf("blue found %s as a holder of a CID announced in red", p.ID)
	}
	for i, d := range blue {
		for _, p := range dht.RoutingPeers(d) {
			for _, r := range redHosts {
				if p == r.ID() {
					t.Fatalf("blue node %d has red node %s in its routing table", i, p)
				}
			}
		}
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

// TestBucketRecords: a record published by one node is found by another;
// a newer version replaces it everywhere; a forged one (signed by another
// key) and an older one are refused and never returned.
func TestBucketRecords(t *testing.T) {
	hosts, dhts := network(t, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	owner, _ := bucket.NewKey()
	thief, _ := bucket.NewKey()
	r1, err := bucket.NewRecord(owner, "default", false, "first")
	if err != nil {
		t.Fatal(err)
	}
	if err := dhts[0].PutBucketRecord(ctx, r1); err != nil {
		t.Fatal(err)
	}
	got, err := dhts[3].GetBucketRecord(ctx, r1.Bucket, false)
	if err != nil || got.Seq != 1 || got.Label != "first" {
		t.Fatalf("node 3 got %+v, %v", got, err)
	}
	r2 := r1
	r2.Seq, r2.Label, r2.Private = 2, "second", true
	if err := r2.Sign(owner); err != nil {
		t.Fatal(err)
	}
	if err := dhts[1].PutBucketRecord(ctx, r2); err != nil {
		t.Fatal(err)
	}
	forged := r2
	forged.Seq, forged.Label, forged.Private = 3, "stolen", false
	forged.Sig = thief.Sign([]byte("anything"))
	if err := dhts[2].PutBucketRecord(ctx, forged); err == nil {
		t.Fatal("a record signed by another key was published")
	}
	dhts[2].PutBucketRecord(ctx, r1) // an older version: refused by whoever has r2
	// A lying peer sends the forged record straight to every node: each
	// checks it and refuses it.
	fb, _ := forged.Marshal()
	good, _ := r2.Marshal()
	for i := 1; i < len(dhts); i++ {
		if err := dht.PutRawRecord(ctx, dhts[0], hosts[i].ID(), bucket.RecordKey(r1.Bucket), good); err != nil {
			t.Fatalf("node %d refused the valid newest record sent the same way: %v", i, err)
		}
	}
	// So does an older version, and a valid record of another bucket
	// under this one's key.
	older, _ := r1.Marshal()
	elsewhere, err := bucket.NewRecord(owner, "default", false, "elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	eb, _ := elsewhere.Marshal()
	for i := 1; i < len(dhts); i++ {
		for what, b := range map[string][]byte{"forged": fb, "older": older, "other bucket's": eb} {
			if err := dht.PutRawRecord(ctx, dhts[0], hosts[i].ID(), bucket.RecordKey(r1.Bucket), b); err == nil {
				t.Errorf("node %d took a %s record", i, what)
			}
		}
	}
	for _, i := range []int{0, 3, 4} {
		got, err := dhts[i].GetBucketRecord(ctx, r1.Bucket, false)
		if err != nil || got.Seq != 2 || got.Label != "second" || !got.Private {
			t.Fatalf("node %d got %+v, %v; want the second version", i, got, err)
		}
	}
}
