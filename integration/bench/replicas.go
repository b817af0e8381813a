//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ddc-project/ddc/node"
)

// runReplicas measures a bucket's replication on daemons on loopback, in
// a private cluster (membership is trust, the README's way to have nodes
// keep each other's files), with the README's defaults but for:
// loopback ports, a repair grace of 10 s and a check every 2 s.
//   - The floor: a fresh node's 'ddc get' of a file that one node alone
//     holds (a bucket of 1 replica), the single-copy rate of the link.
//   - Replication: 'ddc put --replicas-wait' into a bucket of 3 replicas;
//     each target's pull, from its "accepted" to its "held" line on the
//     put's stderr, as a rate against the floor.
//   - Repair: one holder killed; the time until 3 live nodes keep the
//     file again, against grace + size ÷ (0.8 × the floor).
//   - Background cost: three nodes keeping the same small files, checked
//     every few seconds; the CPU and the bytes the daemons read and wrote
//     through system calls (sockets, mostly) a check, projected to a node
//     of a million pieces at the default interval.
func runReplicas(size int64, dir string) error {
	work, bin, err := workWithDDC(dir, "ddc-replbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	key := filepath.Join(work, "swarm.key")
	if _, err := ddcOut(bin, filepath.Join(work, "keygen"), "cluster", "key", "gen", "-o", key); err != nil {
		return err
	}
	const grace, check = 10 * time.Second, 2 * time.Second
	var nodes []*benchDaemon
	defer func() {
		for _, d := range nodes {
			d.stop()
		}
	}()
	for i := range 5 {
		d, err := clusterDaemon(bin, filepath.Join(work, fmt.Sprintf("node-%d", i)), key, nodes, map[string]any{"grace": grace.String(), "check_interval": check.String()})
		if err != nil {
			return err
		}
		nodes = append(nodes, d)
	}
	owner := nodes[0]
	ownerOut := func(args ...string) (string, error) { return ddcOut(bin, owner.repo, args...) }

	// The floor: one holder, one getter.
	single, err := ownerOut("bucket", "create")
	if err != nil {
		return err
	}
	floorID, err := cliPut(bin, owner.repo, size, 21, "-b", single)
	if err != nil {
		return err
	}
	floor, err := clusterGets(bin, work, key, nodes[0], floorID, size, 1)
	if err != nil {
		return err
	}
	// Three at once: what three targets pulling from one holder ask of
	// the machine's cores, the floor of a replication on one machine.
	floor3, err := clusterGets(bin, work, key, nodes[0], floorID, size, 3)
	if err != nil {
		return err
	}
	gbs := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e9 }
	fmt.Fprintf(os.Stderr, "single-copy get: %.2f GB/s; three at once: %.2f GB/s each\n", gbs(floor), gbs(floor3))

	// Replication to 3.
	b, err := ownerOut("bucket", "create", "--replicas", "3")
	if err != nil {
		return err
	}
	src := filepath.Join(work, "src")
	if err := writeSeeded(src, size, 22); err != nil {
		return err
	}
	pulls, span, root, err := timedReplicasPut(bin, owner.repo, src, b)
	os.Remove(src)
	if err != nil {
		return err
	}
	worst := time.Duration(0)
	for _, p := range pulls {
		worst = max(worst, p)
	}
	fmt.Fprintf(os.Stderr, "replicated to %d targets: pulls %v, first accepted to last held %s\n", len(pulls), pulls, span.Round(time.Millisecond))

	// Repair: a holder that is not the uploader goes. The uploader's copy,
	// cache once 3 nearer nodes keep the file, is collected first: the
	// figure is a pull, not a pin of bytes already there.
	if _, err := ownerOut("repo", "gc"); err != nil {
		return err
	}
	var victim *benchDaemon
	var live []*benchDaemon
	for _, d := range nodes {
		ls, err := ddcOut(bin, d.repo, "pin", "ls")
		if err != nil {
			return err
		}
		if victim == nil && d != owner && strings.Contains(ls, root) {
			victim = d
			continue
		}
		live = append(live, d)
	}
	if victim == nil {
		return fmt.Errorf("no holder of %s but the uploader", root)
	}
	victim.cmd.Process.Kill()
	victim.cmd.Wait()
	lost := time.Now()
	repaired, err := waitKeepers(bin, live, root, 3, grace+5*time.Minute)
	if err != nil {
		return err
	}
	repair := repaired.Sub(lost)
	repairBound := grace + time.Duration(float64(floor)/0.8)
	fmt.Fprintf(os.Stderr, "repaired in %s (grace %s, check every %s)\n", repair.Round(time.Millisecond), grace, check)
	for _, d := range nodes {
		if d != victim {
			d.stop()
		}
	}
	nodes = nil

	cost, err := repairCost(bin, work, key)
	if err != nil {
		return err
	}
	perTarget := float64(size) / worst.Seconds() / 1e9
	return report(fmt.Sprintf("replication benchmark: 5 daemons on loopback in a private cluster, %s file", human(size)), append([]result{
		{
			name:     fmt.Sprintf("replicate %s to R = 3 (put --replicas-wait; the slowest of %d targets' pulls)", human(size), len(pulls)),
			value:    fmt.Sprintf("%.2f GB/s a target (all held %s after the first accepted)", perTarget, span.Round(time.Millisecond)),
			baseline: fmt.Sprintf("single-copy ddc get %.2f GB/s", gbs(floor)),
			ratio:    fmt.Sprintf("%.2f×", perTarget/gbs(floor)), target: "≥ 0.8×", ok: perTarget/gbs(floor) >= 0.8,
		},
		{
			name:     fmt.Sprintf("the same, against three gets at once from one holder (%d CPUs for all the nodes)", runtime.NumCPU()),
			value:    fmt.Sprintf("%.2f GB/s a target", perTarget),
			baseline: fmt.Sprintf("3 fresh nodes' ddc get at once %.2f GB/s each", gbs(floor3)),
			ratio:    fmt.Sprintf("%.2f×", perTarget/gbs(floor3)), target: "≥ 0.8×", ok: perTarget/gbs(floor3) >= 0.8,
		},
		{
			name:     fmt.Sprintf("repair of %s after a holder is killed (grace %s, checks every %s)", human(size), grace, check),
			value:    repair.Round(time.Millisecond).String(),
			baseline: fmt.Sprintf("grace + size ÷ (0.8× single-copy get) = %s", repairBound.Round(time.Millisecond)),
			ratio:    fmt.Sprintf("%.2f×", repair.Seconds()/repairBound.Seconds()), target: "≤ 1×", ok: repair <= repairBound,
		},
	}, cost...))
}

// clusterGets has count fresh nodes of the cluster get id at once, each
// 'ddc get' a separate process, and returns the slowest's time.
func clusterGets(bin, work, key string, from *benchDaemon, id string, size int64, count int) (time.Duration, error) {
	var getters []*benchDaemon
	defer func() {
		for _, g := range getters {
			g.stop()
			os.RemoveAll(g.repo)
		}
	}()
	for range count {
		path, err := os.MkdirTemp(work, "getter-")
		if err != nil {
			return 0, err
		}
		os.Remove(path) // init makes it
		g, err := clusterDaemon(bin, path, key, []*benchDaemon{from}, nil)
		if err != nil {
			return 0, err
		}
		getters = append(getters, g)
	}
	took := make([]time.Duration, count)
	errs := make([]error, count)
	var wg sync.WaitGroup
	for i, g := range getters {
		wg.Go(func() {
			took[i], errs[i] = timedGet(func(args ...string) *exec.Cmd { return exec.Command(bin, args...) }, g.repo, id, size)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return slices.Max(took), nil
}

// clusterDaemon inits a repo at path in the private cluster of key, with
// the replication settings given, and runs a node on it bootstrapped off
// the first of boot.
func clusterDaemon(bin, path, key string, boot []*benchDaemon, replication map[string]any) (*benchDaemon, error) {
	if _, err := ddcOut(bin, path, "init", "--cluster", "bench", "--swarm-key", key); err != nil {
		return nil, err
	}
	if len(replication) > 0 {
		cfgPath := filepath.Join(path, "config.json")
		b, err := os.ReadFile(cfgPath)
		if err != nil {
			return nil, err
		}
		var cfg map[string]any
		if err := json.Unmarshal(b, &cfg); err != nil {
			return nil, err
		}
		cfg["replication"] = replication
		if b, err = json.MarshalIndent(cfg, "", "  "); err != nil {
			return nil, err
		}
		if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
			return nil, err
		}
	}
	var args []string
	if len(boot) > 0 {
		args = []string{"--bootstrap", boot[0].addr}
	}
	return startDaemon(bin, path, args...)
}

// timedReplicasPut runs 'ddc put src -b b --replicas-wait' on the repo
// and times, from its stderr, each target's pull (accepted to held) and
// the span from the first accepted to the last held.
func timedReplicasPut(bin, repoPath, src, b string) (pulls []time.Duration, span time.Duration, root string, err error) {
	cmd := exec.Command(bin, "--repo", repoPath, "put", src, "-b", b, "--replicas-wait")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, 0, "", err
	}
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		return nil, 0, "", err
	}
	accepted := map[string]time.Time{}
	var first, last time.Time
	var lines []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		now := time.Now()
		lines = append(lines, sc.Text())
		f := strings.Fields(strings.TrimPrefix(sc.Text(), "ddc: "))
		if len(f) != 2 {
			continue
		}
		switch f[1] {
		case "accepted":
			accepted[f[0]] = now
			if first.IsZero() {
				first = now
			}
		case "held":
			if t, ok := accepted[f[0]]; ok {
				pulls = append(pulls, now.Sub(t))
				last = now
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		return nil, 0, "", fmt.Errorf("put --replicas-wait: %v: %s", err, strings.Join(lines, "\n"))
	}
	if len(pulls) == 0 {
		return nil, 0, "", fmt.Errorf("put --replicas-wait pushed to no node: %s", strings.Join(lines, "\n"))
	}
	return pulls, last.Sub(first), strings.TrimSpace(out.String()), nil
}

// waitKeepers polls until want of ds keep root pinned, and returns when.
func waitKeepers(bin string, ds []*benchDaemon, root string, want int, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		n := 0
		for _, d := range ds {
			if ls, err := ddcOut(bin, d.repo, "pin", "ls"); err == nil && strings.Contains(ls, root) {
				n++
			}
		}
		if n >= want {
			return time.Now(), nil
		}
		time.Sleep(250 * time.Millisecond) // polling the nodes, a benchmark's clock
	}
	return time.Time{}, fmt.Errorf("%s: fewer than %d keepers after %s", root, want, limit)
}

// repairCost runs three nodes that keep the same files of a bucket of 3
// replicas, checked every few seconds, and measures what the checks cost
// them: CPU and bytes through system calls, a check.
func repairCost(bin, work, key string) ([]result, error) {
	const files, every, window = 300, 10 * time.Second, 40 * time.Second
	var nodes []*benchDaemon
	defer func() {
		for _, d := range nodes {
			d.stop()
		}
	}()
	for i := range 3 {
		d, err := clusterDaemon(bin, filepath.Join(work, fmt.Sprintf("cost-%d", i)), key, nodes, map[string]any{"check_interval": every.String()})
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, d)
	}
	// The nodes' own idle cost first, over the same window, to take off.
	time.Sleep(every) // a benchmark's clock: the nodes settle on theirs
	idle0, idleIO0, _ := daemonsCost(nodes)
	time.Sleep(window)
	idle1, idleIO1, _ := daemonsCost(nodes)
	b, err := ddcOut(bin, nodes[0].repo, "bucket", "create", "--replicas", "3")
	if err != nil {
		return nil, err
	}
	for i := range files {
		put := exec.Command(bin, "--repo", nodes[0].repo, "put", "-", "-b", b, "--replicas-wait")
		put.Stdin = strings.NewReader(fmt.Sprintf("file %d of the repair cost benchmark\n", i))
		if out, err := put.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("put %d: %v: %s", i, err, out)
		}
	}
	// One interval for the first checks to begin, then the window.
	time.Sleep(every) // a benchmark's clock: the checks run on theirs
	cpu0, io0, checks0 := daemonsCost(nodes)
	time.Sleep(window)
	cpu1, io1, checks1 := daemonsCost(nodes)
	checks := checks1 - checks0
	if checks == 0 {
		return nil, fmt.Errorf("no repair checks ran in %s", window)
	}
	cpuPer := max(0, cpu1-cpu0-(idle1-idle0)) / time.Duration(checks)
	bytesPer := float64(max(0, io1-io0-(idleIO1-idleIO0))) / float64(checks)
	fmt.Fprintf(os.Stderr, "repair checks: %d in %s on 3 nodes, %s CPU and %.1f KB a check, besides the idle nodes' %s CPU and %.1f KB\n", checks, window, cpuPer, bytesPer/1e3, idle1-idle0, float64(idleIO1-idleIO0)/1e3)
	// A node of a million pieces at the default interval (10 min): one
	// check a file, so the files count, not the pieces.
	var rows []result
	for _, f := range []struct {
		name  string
		files float64
	}{{"1 GiB files (1,000)", 1000}, {"64 MiB files (15,625)", 15625}, {"1 MiB files (1,000,000: the passes stretch to keep the pace)", 1e6}} {
		// One check a file a pass, the passes every 10 minutes or, past
		// node.RepairChecksPerSecond, further apart.
		perSec := min(f.files/(10*60), node.RepairChecksPerSecond)
		core := perSec * cpuPer.Seconds() * 100
		kbPerThousand := perSec * bytesPer / 1e3 / 1000
		rows = append(rows, result{
			name:     "repair's background cost, a node of 1,000,000 pieces in " + f.name + ", default interval",
			value:    fmt.Sprintf("%.3f%% of a core, %.3f KB/s per thousand pieces", core, kbPerThousand),
			baseline: fmt.Sprintf("measured: %s CPU, %.1f KB a check (%d checks, the 3 nodes' idle cost taken off)", cpuPer.Round(time.Microsecond), bytesPer/1e3, checks),
			ratio:    fmt.Sprintf("%.1f checks/s (a pass every %s)", perSec, (time.Duration(f.files/perSec) * time.Second).Round(time.Minute)),
			target:   "≤ 1% of a core, a few KB/s per thousand pieces", ok: core <= 1 && kbPerThousand <= 3,
		})
	}
	return rows, nil
}

// daemonsCost sums the CPU, the bytes read and written through system
// calls and the repair checks of the daemons so far.
func daemonsCost(ds []*benchDaemon) (cpu time.Duration, rw int64, checks int64) {
	for _, d := range ds {
		cpu += procCPU(d.pid)
		rw += procIO(d.pid)
		checks += metricValue(d.repo, "ddc_repair_checks_total")
	}
	return cpu, rw, checks
}

// procIO is rchar + wchar of process pid: every byte through read and
// write calls, sockets included.
func procIO(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	var n int64
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok && (k == "rchar" || k == "wchar") {
			x, _ := strconv.ParseInt(v, 10, 64)
			n += x
		}
	}
	return n
}

// metricValue reads a counter from the node's metrics (0 when absent).
func metricValue(repoPath, name string) int64 {
	var st struct {
		API string `json:"api"`
	}
	if b, err := os.ReadFile(filepath.Join(repoPath, "node.json")); err != nil || json.Unmarshal(b, &st) != nil {
		return 0
	}
	resp, err := http.Get("http://" + st.API + "/debug/metrics/prometheus")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int64(f)
		}
	}
	return 0
}
