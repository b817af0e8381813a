package repo_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/ddc-project/ddc/node/repo"
)

func TestNetworkConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*repo.NetworkConfig)
		says string
	}{
		{"cluster", func(n *repo.NetworkConfig) { n.Cluster = "a/b" }, "cluster"},
		{"no listen", func(n *repo.NetworkConfig) { n.Listen = nil }, "no listen"},
		{"listen", func(n *repo.NetworkConfig) { n.Listen = []string{"tcp://x"} }, "listen address"},
		{"bootstrap without id", func(n *repo.NetworkConfig) { n.Bootstrap = []string{"/ip4/1.2.3.4/tcp/1"} }, "/p2p/"},
		{"api host", func(n *repo.NetworkConfig) { n.API = "example.com:5040" }, "want an IP"},
		{"api port", func(n *repo.NetworkConfig) { n.API = "127.0.0.1:99999" }, "port"},
		{"dht mode", func(n *repo.NetworkConfig) { n.DHTMode = "full" }, "dht_mode"},
		{"conns", func(n *repo.NetworkConfig) { n.ConnsLow, n.ConnsHigh = 10, 5 }, "conns"},
	} {
		nc := repo.DefaultConfig().Network
		tc.set(&nc)
		if err := nc.Validate(); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.says)
		}
	}
	if err := repo.DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

// A repo made before the network section existed opens with its defaults.
func TestConfigWithoutNetworkSection(t *testing.T) {
	p := filepath.Join(t.TempDir(), "repo")
	if _, err := repo.Init(p, repo.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(p, "config.json")
	old := `{"version": 1, "peer_id": "x", "store": {"block_size": 1073741824}}`
	if err := os.WriteFile(cfgPath, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Config.Network.Cluster != "default" || len(r.Config.Network.Listen) == 0 {
		t.Fatalf("network defaults not applied: %+v", r.Config.Network)
	}
}

func TestStateAndPeers(t *testing.T) {
	p := filepath.Join(t.TempDir(), "repo")
	if _, err := repo.Init(p, repo.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := repo.ReadState(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state before a node ran: %v", err)
	}
	st := repo.State{PID: 42, PeerID: r.PeerID().String(), API: "127.0.0.1:1", Addrs: []string{"/ip4/127.0.0.1/tcp/2"}}
	if err := r.WriteState(st); err != nil {
		t.Fatal(err)
	}
	if got, err := repo.ReadState(p); err != nil || got.PID != 42 || got.API != st.API {
		t.Fatalf("read state: %+v, %v", got, err)
	}
	if err := r.RemoveState(); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveState(); err != nil {
		t.Fatalf("second remove: %v", err)
	}

	a, _ := ma.NewMultiaddr("/ip4/127.0.0.1/tcp/4040")
	saved := []peer.AddrInfo{{ID: r.PeerID(), Addrs: []ma.Multiaddr{a}}}
	if err := r.SavePeers(saved); err != nil {
		t.Fatal(err)
	}
	got, err := r.LoadPeers()
	if err != nil || len(got) != 1 || got[0].ID != r.PeerID() || !got[0].Addrs[0].Equal(a) {
		t.Fatalf("load peers: %v, %v", got, err)
	}
	// A damaged entry is skipped, not fatal: these are hints.
	os.WriteFile(filepath.Join(p, "peers.json"), []byte(`[{"id":"nope","addrs":[]}]`), 0o600)
	if got, err := r.LoadPeers(); err != nil || len(got) != 0 {
		t.Fatalf("damaged peers: %v, %v", got, err)
	}
}

func TestReplicationStoreFor(t *testing.T) {
	c := repo.DefaultConfig()
	c.Replication.StoreFor = []string{"*", "ddcbk6m2jhfnyegp76ep73n5lc6zu5sv5rezy7mam23ezt24otltfkwq", "did:key:z6MkiP9gsaS1azVRbWTBGerPUg5obL9Z2EyvuLY19w6YfU8k"}
	if err := c.Validate(); err != nil {
		t.Fatalf("a bucket, an owner and *: %v", err)
	}
	c.Replication.StoreFor = append(c.Replication.StoreFor, "alice")
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `store_for "alice"`) {
		t.Fatalf("store_for naming neither: %v", err)
	}
}
