package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestVersion: ddc version --json names a version and the commit the
// binary was built from.
func TestVersion(t *testing.T) {
	r := newRepo(t)
	var v struct {
		Version, Revision, Go string
	}
	if err := json.Unmarshal([]byte(r.ok(nil, "version", "--json")), &v); err != nil {
		t.Fatal(err)
	}
	if v.Version == "" || !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(v.Revision) || !strings.HasPrefix(v.Go, "go1.") {
		t.Fatalf("version --json: %+v; want a version, a 40-hex revision and Go's version", v)
	}
	if out := r.ok(nil, "version"); !strings.Contains(out, v.Revision) {
		t.Fatalf("version: %q does not name the revision", out)
	}
}

// TestNodeStop: 'ddc node stop' stops the node cleanly and returns once
// it has: the process exited 0 and the repo is free for offline use.
func TestNodeStop(t *testing.T) {
	d := startDaemon(t, newDaemonRepo(t))
	c := d.put(randomFile(t, 900, 1<<20))
	if out := d.ok(nil, "node", "stop"); strings.TrimSpace(out) != "stopped" {
		t.Fatalf("node stop said %q", out)
	}
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("node stop returned but the node runs on")
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("the node exited %d after node stop: %s", code, d.logs)
	}
	d.ok(nil, "repo", "gc") // offline: the repo is free
	d.ok(nil, "cat", c)
	if code, _, errs := d.run(nil, "node", "stop"); code == 0 || !strings.Contains(errs, "node run") {
		t.Fatalf("node stop with no node: exit %d, %q; want an error saying how to start one", code, errs)
	}
}

// metrics scrapes d's API at Kubo's metrics path.
func (d *daemon) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + d.state.API + "/debug/metrics/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: %d, %v", resp.StatusCode, err)
	}
	return string(b)
}

// metric is the value of the sample named series (with its labels, as
// Prometheus' text format writes them) in text, or 0 when there is none.
func metric(t *testing.T, text, series string) float64 {
	t.Helper()
	for line := range strings.Lines(text) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metric %s: %q", series, line)
			}
			return v
		}
	}
	return 0
}

// TestMetrics: the API serves ddc's and go-libp2p's metrics at Kubo's
// path, and a put, a get, a gateway read and a GC move their counters.
func TestMetrics(t *testing.T) {
	a := startDaemon(t, newDaemonRepo(t))
	b := startDaemon(t, newDaemonRepo(t), "--bootstrap", a.tcpAddr())
	const size = 4 << 20
	c := a.put(randomFile(t, 901, size))
	before := b.metrics(t)
	for _, name := range []string{"libp2p_rcmgr_", "libp2p_swarm_", "ddc_store_live_bytes", "ddc_dht_routing_table_peers", "ddc_connected_peers", "go_goroutines"} {
		if !strings.Contains(before, name) {
			t.Fatalf("no %s metrics in the scrape", name)
		}
	}
	if v := metric(t, a.metrics(t), "ddc_store_live_bytes"); v < size {
		t.Fatalf("after a put of %d bytes the store's live bytes are %v", size, v)
	}
	b.ok(nil, "get", c, "-o", filepath.Join(t.TempDir(), "got"), "--copy") // block-stored cache: the GC below frees its bytes
	after := b.metrics(t)
	fetched := `ddc_fetched_bytes_total{protocol="exchange"}`
	if got := metric(t, after, fetched) - metric(t, before, fetched); got < size {
		t.Fatalf("a get of %d bytes moved %s by %v", size, fetched, got)
	}
	if v := metric(t, after, "ddc_fetch_piece_seconds_count"); v < 4 {
		t.Fatalf("ddc_fetch_piece_seconds counted %v pieces for a 4-chunk file", v)
	}
	if v := metric(t, a.metrics(t), `ddc_served_bytes_total{protocol="exchange"}`); v < size {
		t.Fatalf("the holder served %v bytes over the exchange for a %d-byte get", v, size)
	}
	resp, err := http.Get(b.gateway() + "/ddc/file/" + c)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	b.gc()
	m := b.metrics(t)
	if metric(t, m, `ddc_gateway_responses_total{status="200"}`) < 1 || metric(t, m, `ddc_served_bytes_total{protocol="gateway"}`) < size {
		t.Fatal("a gateway read did not move ddc_gateway_responses_total and ddc_served_bytes_total")
	}
	if metric(t, m, "ddc_gc_runs_total") != 1 || metric(t, m, "ddc_gc_freed_bytes_total") < size {
		t.Fatalf("a GC of a %d-byte cached file: runs %v, freed %v", size, metric(t, m, "ddc_gc_runs_total"), metric(t, m, "ddc_gc_freed_bytes_total"))
	}
}

// setConfig sets key of section in the config of the stopped repo r.
func setConfig(t *testing.T, r *repo, section, key string, value any) {
	t.Helper()
	path := filepath.Join(r.path, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	sec, _ := cfg[section].(map[string]any)
	if sec == nil {
		sec = map[string]any{}
		cfg[section] = sec
	}
	sec[key] = value
	if b, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestScrubRepairs: a byte flipped in a stored piece of a file another
// node holds too is found by the scrub, which fetches the piece again
// from that node; the metrics count it, and the repo verifies.
func TestScrubRepairs(t *testing.T) {
	a := startDaemon(t, newDaemonRepo(t))
	src := randomFile(t, 991, 8<<20)
	c := a.put(src)
	b := startDaemon(t, newDaemonRepo(t), "--bootstrap", a.tcpAddr())
	b.ok(nil, "get", "--pin", c, "-o", filepath.Join(t.TempDir(), "first"))
	b.stop(t)

	blocks, err := filepath.Glob(filepath.Join(b.path, "store", "blocks", "*"))
	if err != nil || len(blocks) == 0 {
		t.Fatalf("no block files: %v", err)
	}
	flipByte(t, blocks[0], 4<<20)
	setConfig(t, b.repo, "store", "scrub_interval", "1s") // a pass is due at once
	b = startDaemon(t, b.repo, "--bootstrap", a.tcpAddr())
	waitFor(t, "a scrub pass over the file's 9 pieces to repair the flipped one", time.Minute, func() bool {
		m := b.metrics(t)
		return metric(t, m, "ddc_scrub_pieces_repaired_total") >= 1 && metric(t, m, "ddc_scrub_pieces_checked_total") >= 9
	})
	m := b.metrics(t)
	if metric(t, m, "ddc_scrub_pieces_corrupt_total") != 1 || metric(t, m, "ddc_scrub_pieces_checked_total") < 9 {
		t.Fatalf("scrub metrics: %v corrupt, %v checked; want 1 of the file's 9 pieces or more", metric(t, m, "ddc_scrub_pieces_corrupt_total"), metric(t, m, "ddc_scrub_pieces_checked_total"))
	}
	if out := b.ok(nil, "repo", "verify"); !strings.Contains(out, " 0 bad") {
		t.Fatalf("repo verify after the scrub's repair: %q", out)
	}
	a.stop(t) // the copy is this node's own now
	got := filepath.Join(t.TempDir(), "after")
	b.ok(nil, "get", c, "-o", got)
	if !sameFile(t, src, got) {
		t.Fatal("the repaired file reads differently")
	}
}
