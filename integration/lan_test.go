package integration

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ddc-project/ddc/internal/netbed"
)

// TestLANDefaults: three daemons on a LAN of their own (network namespaces
// on a private bridge), each started with nothing but a repo path: mDNS
// connects them, the LAN DHT finds providers, they talk TCP, and a file
// put on one is fetched on another. Skipped where namespaces cannot be
// made (not root, no ip command).
func TestLANDefaults(t *testing.T) {
	bed := lanBed(t, 3)
	var ds []*daemon
	for i, h := range bed.Hosts {
		r := &repo{t: t, path: filepath.Join(t.TempDir(), "repo"), ns: h.NS}
		ds = append(ds, startDaemonCmd(t, r, r.command(context.Background(), "node", "run")))
		t.Logf("node %d: %s at %s", i, ds[i].state.PeerID, h.IP)
	}
	for i, d := range ds {
		waitFor(t, "mDNS to connect every node", 30*time.Second, func() bool { return d.status().Peers >= 2 })
		peers := d.ok(nil, "peers")
		if !strings.Contains(peers, "/tcp/") || strings.Contains(peers, "quic") {
			t.Errorf("node %d talks to its LAN peers over %q, want TCP", i, peers)
		}
		if st := d.status(); st.DHT[0].Mode != "server" || st.DHT[0].Peers < 2 {
			t.Errorf("node %d: LAN DHT %+v, want a server with both peers", i, st.DHT[0])
		}
	}
	src := randomFile(t, 51, 40<<20+3)
	id := ds[0].put(src)
	waitFor(t, "providers on node 2 to list node 0", 30*time.Second, func() bool {
		return contains(ds[2].providers(id), ds[0].state.PeerID)
	})
	out := filepath.Join(t.TempDir(), "got")
	ds[1].ok(nil, "get", id, "-o", out)
	if !sameFile(t, src, out) {
		t.Fatal("node 1 got other bytes across the LAN")
	}
}

// lanBed builds a LAN bed of n hosts for the test and removes it after;
// it skips the test where namespaces cannot be made (not root, no ip
// command).
func lanBed(t *testing.T, n int) *netbed.Bed {
	t.Helper()
	if err := netbed.Available(); err != nil {
		t.Skipf("no LAN test bed here: %v", err)
	}
	bed, err := netbed.New(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := bed.Close(); err != nil {
			t.Error(err)
		}
	})
	return bed
}
