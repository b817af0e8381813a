package integration

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startCluster runs n daemons of cluster name, the others bootstrapping
// through the first; extra flags go to each.
func startCluster(t *testing.T, name string, n int, extra ...string) []*daemon {
	t.Helper()
	ds := []*daemon{startDaemon(t, newDaemonRepo(t), append([]string{"--cluster", name}, extra...)...)}
	for range n - 1 {
		ds = append(ds, startDaemon(t, newDaemonRepo(t), append([]string{"--cluster", name, "--bootstrap", ds[0].tcpAddr()}, extra...)...))
	}
	return ds
}

// TestTwoClusters: two clusters of five daemons on one machine. A file put
// in cluster A is fetched across A, and is not found from cluster B, even
// by a node of B connected to a node of A.
func TestTwoClusters(t *testing.T) {
	a := startCluster(t, "alpha", 5)
	b := startCluster(t, "beta", 5)
	c := putAndGet(t, a[1], a[4], 21, 2<<20)

	b[2].ok(nil, "connect", a[3].tcpAddr())
	code, _, errs := b[2].run(nil, "get", "-o", filepath.Join(t.TempDir(), "b2"), c)
	if code != 3 || !strings.Contains(errs, "beta") {
		t.Fatalf("get in cluster B of a file of cluster A: exit %d, %q; want not found (3) in the beta cluster", code, errs)
	}
	if got := b[2].providers(c); len(got) != 0 {
		t.Fatalf("cluster B's DHT lists holders of a file of cluster A: %v", got)
	}
	for _, d := range b {
		if ls := d.ok(nil, "ls"); strings.Contains(ls, c) {
			t.Fatalf("a node of cluster B holds %s: %q", c, ls)
		}
	}
}

// TestSwarmKey: nodes of a cluster with a swarm key connect and move files
// among themselves; a node without the key cannot complete a connection
// to them.
func TestSwarmKey(t *testing.T) {
	key := filepath.Join(t.TempDir(), "swarm.key")
	newRepo(t).ok(nil, "cluster", "key", "gen", "-o", key)
	in := startCluster(t, "vault", 2, "--swarm-key", key)
	outsider := startDaemon(t, newDaemonRepo(t), "--cluster", "vault")

	code, _, errs := outsider.run(nil, "connect", in[0].tcpAddr())
	if code == 0 || !strings.Contains(errs, "negotiate security protocol") {
		t.Fatalf("a node without the swarm key connecting to one with it: exit %d, %q; want the security handshake to fail", code, errs)
	}
	t.Logf("the handshake without the key fails: %s", strings.TrimSpace(errs))
	if ps := in[0].ok(nil, "peers"); strings.Contains(ps, outsider.state.PeerID) {
		t.Fatalf("the keyed node lists the outsider as a peer: %q", ps)
	}

	waitFor(t, "the keyed nodes to connect", 30*time.Second, func() bool {
		return strings.Contains(in[1].ok(nil, "peers"), in[0].state.PeerID)
	})
	putAndGet(t, in[0], in[1], 22, 1<<20)
}

// putAndGet puts n seeded random bytes on from, gets them by CID on to,
// checks they are the same and returns the CID.
func putAndGet(t *testing.T, from, to *daemon, seed uint64, n int64) string {
	t.Helper()
	src := randomFile(t, seed, n)
	c := from.put(src)
	out := filepath.Join(t.TempDir(), "got")
	to.ok(nil, "get", "-o", out, c)
	if !sameFile(t, src, out) {
		t.Fatalf("%s got other bytes than %s put", to.path, from.path)
	}
	return c
}
