package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ddc-project/ddc/internal/netbed"
)

// nameInfo is what `ddc name resolve --json` prints.
type nameInfo struct {
	Name   string `json:"name"`
	CID    string `json:"cid"`
	Seq    uint64 `json:"seq"`
	Signer string `json:"signer"`
	Prev   string `json:"prev"`
	Record string `json:"record"`
	Source string `json:"source"`
}

func (d *daemon) resolve(args ...string) (nameInfo, int, string) {
	code, out, errs := d.run(nil, append([]string{"name", "resolve", "--json"}, args...)...)
	var i nameInfo
	if code == 0 {
		if err := json.Unmarshal([]byte(out), &i); err != nil {
			d.t.Fatalf("name resolve --json: %v: %q", err, out)
		}
	}
	return i, code, errs
}

// gatewayGet fetches path from the gateway of d, a node on host h of a
// LAN bed: status and body.
func gatewayGet(t *testing.T, h netbed.Host, d *daemon, path string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.state.Gateway+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: h.DialContext}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestLANNames: on a LAN of three nodes, a bucket's name published on A
// (by put --path) resolves on C; a second version reaches every node;
// a publish without a grant of put, with a grant of get only, or of a
// sequence number the name has passed is refused; the log shows both
// versions with their parents; the gateway serves the name (a private
// bucket's only with a grant). With A stopped, C still resolves it from
// the DHT, and once the records A put have aged out of the DHT (4 s
// here), a node that never saw the name resolves it from the holders'
// republished records.
func TestLANNames(t *testing.T) {
	bed := lanBed(t, 4)
	var ds []*daemon
	start := func(i int) *daemon {
		r := &repo{t: t, path: filepath.Join(t.TempDir(), "repo"), ns: bed.Hosts[i].NS}
		r.ok(nil, "init")
		setConfig(t, r, "network", "name_ttl", "1s")
		setConfig(t, r, "network", "name_republish", "1s")
		setConfig(t, r, "network", "dht_record_age", "4s")
		return startDaemonCmd(t, r, r.command(context.Background(), "node", "run"))
	}
	for i := range 3 {
		ds = append(ds, start(i))
	}
	for _, d := range ds {
		waitFor(t, "every node to have both others in its LAN DHT", 30*time.Second, func() bool {
			st := d.status()
			return st.Peers >= 2 && st.DHT[0].Peers >= 2
		})
	}
	a, b, c := ds[0], ds[1], ds[2]
	bkt := strings.TrimSpace(a.ok(nil, "bucket", "create", "--replicas", "3"))
	v1, v2 := randomFile(t, 61, 20<<10), randomFile(t, 62, 30<<10)
	cid1 := a.put(v1, "-b", bkt, "--path", "/site/index.html", "--replicas-wait")

	got, code, errs := c.resolve("-b", bkt, "/site/index.html")
	if code != 0 || got.CID != cid1 || got.Seq != 1 || got.Prev != "" {
		t.Fatalf("C resolves %+v (exit %d: %s), want %s version 1", got, code, errs, cid1)
	}
	cid2 := a.put(v2, "-b", bkt, "--path", "/site/index.html", "--replicas-wait")
	for i, d := range ds {
		waitFor(t, "every node to resolve version 2", 10*time.Second, func() bool {
			got, _, _ := d.resolve("-b", bkt, "site/index.html")
			return got.CID == cid2 && got.Seq == 2
		})
		t.Logf("node %d resolves version 2", i)
	}

	// Refusals, each with its reason.
	if code, _, errs := c.run(nil, "name", "publish", "-b", bkt, "site/index.html", cid1); code != 6 || !strings.Contains(errs, "no grant of put") {
		t.Errorf("a publish by a node without a grant: exit %d: %s", code, errs)
	}
	getOnly := strings.TrimSpace(a.ok(nil, "bucket", "grant", bkt, "--to", c.state.PeerID, "--ops", "get"))
	if code, _, errs := c.run(nil, "name", "publish", "-b", bkt, "--token", getOnly, "site/index.html", cid1); code != 6 || !strings.Contains(errs, "not put") {
		t.Errorf("a publish with a grant of get only: exit %d: %s", code, errs)
	}
	if code, _, errs := a.run(nil, "name", "publish", "-b", bkt, "--seq", "2", "site/index.html", cid1); code != 2 || !strings.Contains(errs, "is at 2 already") {
		t.Errorf("a publish of a sequence number the name has: exit %d: %s", code, errs)
	}
	if got, _, _ := b.resolve("-b", bkt, "site/index.html", "--fresh"); got.CID != cid2 {
		t.Errorf("after the refusals B resolves %+v, want %s", got, cid2)
	}

	// The log, on a node that did not publish.
	var log struct {
		Versions []nameInfo `json:"versions"`
		Error    string     `json:"error"`
	}
	if err := json.Unmarshal([]byte(c.ok(nil, "name", "log", "-b", bkt, "site/index.html", "--json")), &log); err != nil {
		t.Fatal(err)
	}
	if len(log.Versions) != 2 || log.Error != "" {
		t.Fatalf("log on C: %+v", log)
	}
	newest, first := log.Versions[0], log.Versions[1]
	if newest.Seq != 2 || newest.CID != cid2 || newest.Prev != first.Record || first.Seq != 1 || first.CID != cid1 || first.Prev != "" {
		t.Errorf("log on C: %+v, want version 2 (%s) whose parent is version 1 (%s)", log.Versions, cid2, cid1)
	}

	// get --path is a name lookup, and finds files put without a name
	// (before names, or --no-name) by their tag.
	out := filepath.Join(t.TempDir(), "got")
	c.ok(nil, "get", "-b", bkt, "--path", "/site/index.html", "-o", out)
	if !sameFile(t, v2, out) {
		t.Error("get --path on C wrote other bytes than version 2")
	}
	old := randomFile(t, 63, 5<<10)
	a.put(old, "-b", bkt, "--path", "/old.txt", "--no-name", "--replicas-wait")
	if code, _, _ := c.run(nil, "name", "resolve", "-b", bkt, "old.txt"); code != 3 {
		t.Errorf("put --no-name published a name (resolve exit %d, want 3)", code)
	}
	c.ok(nil, "get", "-b", bkt, "--path", "/old.txt", "-o", out)
	if !sameFile(t, old, out) {
		t.Error("get --path of a file with no name wrote other bytes")
	}

	// The gateway serves the name; a private bucket's only with a grant.
	want, _ := os.ReadFile(v2)
	if status, body := gatewayGet(t, bed.Hosts[2], c, "/ddc/name/"+bkt+"/site/index.html"); status != 200 || body != string(want) {
		t.Errorf("C's gateway serves the name: %d, %d bytes", status, len(body))
	}
	if status, body := gatewayGet(t, bed.Hosts[2], c, "/ddc/name/"+bkt+"/site/index.html/more"); status != 404 || !strings.Contains(body, "no such file or folder") {
		t.Errorf("a path past a name of a file: %d %q", status, body)
	}
	// A name of a directory serves paths into it.
	tree := t.TempDir()
	if err := os.MkdirAll(filepath.Join(tree, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "docs", "a.txt"), []byte("in a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := strings.TrimSpace(a.ok(nil, "put", "-r", tree, "-b", bkt))
	a.ok(nil, "name", "publish", "-b", bkt, "tree", root)
	if status, body := gatewayGet(t, bed.Hosts[2], c, "/ddc/name/"+bkt+"/tree/docs/a.txt"); status != 200 || body != "in a folder" {
		t.Errorf("a path into a directory's name: %d %q", status, body)
	}
	priv := strings.TrimSpace(a.ok(nil, "bucket", "create", "--private", "--replicas", "3"))
	a.put(v1, "-b", priv, "--path", "/secret.bin", "--replicas-wait")
	if status, _ := gatewayGet(t, bed.Hosts[2], c, "/ddc/name/"+priv+"/secret.bin"); status != 403 {
		t.Errorf("a private bucket's name without a grant: %d, want 403", status)
	}
	// The name is the bucket's even where its file is public: no grant,
	// no resolve.
	a.ok(nil, "name", "publish", "-b", priv, "public.bin", cid1)
	if status, _ := gatewayGet(t, bed.Hosts[2], c, "/ddc/name/"+priv+"/public.bin"); status != 403 {
		t.Errorf("a private bucket's name of a public file without a grant: %d, want 403", status)
	}
	bearer := strings.TrimSpace(a.ok(nil, "bucket", "grant", priv, "--bearer", "--ops", "get"))
	if status, body := gatewayGet(t, bed.Hosts[2], c, "/ddc/name/"+priv+"/secret.bin", "Authorization", "Bearer "+bearer); status != 200 || len(body) != 20<<10 {
		t.Errorf("a private bucket's name with a grant: %d, %d bytes", status, len(body))
	}

	// A goes away: the name lives on.
	before := b.status().NamesRepublished
	a.stop(t)
	if got, code, errs := c.resolve("-b", bkt, "site/index.html", "--fresh"); code != 0 || got.CID != cid2 {
		t.Fatalf("with A stopped C resolves %+v (exit %d: %s)", got, code, errs)
	}
	// Six republish rounds of B (one a second) outlast the 4 s the DHT
	// keeps what A put.
	waitFor(t, "B to republish the name six times", 30*time.Second, func() bool {
		return b.status().NamesRepublished >= before+6
	})
	d := start(3)
	waitFor(t, "the new node to join", 30*time.Second, func() bool { return d.status().DHT[0].Peers >= 2 })
	waitFor(t, "the new node to resolve version 2", 10*time.Second, func() bool {
		got, _, _ := d.resolve("-b", bkt, "site/index.html", "--fresh")
		return got.CID == cid2 && got.Seq == 2
	})
	// Its log fetches version 1's record from the holders.
	if err := json.Unmarshal([]byte(d.ok(nil, "name", "log", "-b", bkt, "site/index.html", "--json")), &log); err != nil {
		t.Fatal(err)
	}
	if len(log.Versions) != 2 || log.Versions[1].Record != first.Record || log.Versions[1].CID != cid1 {
		t.Errorf("log on the new node: %+v", log)
	}
}

// TestNameVersionsStayUntilPruned: files a node only fetched (cache, no
// pin) stay through repo gc while its name's history roots them; once
// the history is pruned, gc takes the older version and keeps the
// current one.
func TestNameVersionsStayUntilPruned(t *testing.T) {
	y := startDaemon(t, newDaemonRepo(t))
	x := startDaemon(t, newDaemonRepo(t), "--bootstrap", y.tcpAddr())
	cid1, cid2 := y.put(randomFile(t, 71, 1<<20)), y.put(randomFile(t, 72, 1<<20))
	for _, c := range []string{cid1, cid2} {
		x.ok(nil, "get", c, "-o", filepath.Join(t.TempDir(), "got"), "--copy") // cache in x's blocks
	}
	live := func() uint64 {
		var st struct {
			PieceBytes uint64 `json:"piece_bytes"`
		}
		if err := json.Unmarshal([]byte(x.ok(nil, "repo", "stat", "--json")), &st); err != nil {
			t.Fatal(err)
		}
		return st.PieceBytes
	}
	x.ok(nil, "name", "publish", "home", cid1)
	x.ok(nil, "name", "publish", "home", cid2)
	x.ok(nil, "repo", "gc")
	if got := live(); got < 2<<20 {
		t.Fatalf("gc left %d bytes: it took versions the name's history roots", got)
	}
	out := x.ok(nil, "name", "log", "home", "--prune", "--json")
	var p struct {
		Seq      uint64 `json:"seq"`
		Prev     string `json:"prev"`
		Unrooted int    `json:"unrooted"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.Seq != 3 || p.Prev != "" || p.Unrooted < 2 {
		t.Fatalf("prune: %s (%v)", out, err)
	}
	x.ok(nil, "repo", "gc")
	if got := live(); got >= 2<<20 || got < 1<<20 {
		t.Fatalf("after the prune gc left %d bytes, want version 3's 1 MiB file and its record", got)
	}
	if got := x.ok(nil, "name", "resolve", "home"); strings.TrimSpace(got) != cid2 {
		t.Errorf("after the prune the name resolves to %s, want %s", got, cid2)
	}
	var log struct {
		Versions []nameInfo `json:"versions"`
	}
	json.Unmarshal([]byte(x.ok(nil, "name", "log", "home", "--json")), &log)
	if len(log.Versions) != 1 {
		t.Errorf("after the prune the log lists %d versions, want 1", len(log.Versions))
	}
}
