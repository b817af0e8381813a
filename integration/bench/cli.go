//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// runCLI measures ddc as users run it: 'ddc get' as a separate process
// through the getter's daemon, from one remote daemon on loopback, against
// its floor measured in the same run: the raw libp2p stream between
// in-process hosts, its sender reading the same file from the page cache
// in 1 MiB reads (as a holder reads what it stores), landed on the
// getter's disk once (O_DIRECT, fdatasync). Beside it: the same get with
// --copy (the node keeps a copy of its own), a get served by a holder
// whose pieces lie in place against one from block-stored pieces, 'ddc
// put --in-place' against one-core SHA-256 of the same bytes, and a fresh
// node's first get of a small file held by a connected peer.
func runCLI(size int64, dir string, runs, fresh int) error {
	work, bin, err := workWithDDC(dir, "ddc-clibench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	src := filepath.Join(work, "src")
	if err := writeSeeded(src, size, 2); err != nil {
		return err
	}
	// In-process sender of the raw stream, reading src.
	sender, err := benchNode(filepath.Join(work, "sender"), nil)
	if err != nil {
		return err
	}
	defer sender.Close()
	serveRawFile(sender.Host(), src)
	// Daemon holders: one with block-stored pieces, one (apart from it,
	// so that no getter finds both) with the pieces in place in src.
	dh, err := startDaemon(bin, filepath.Join(work, "dholder"))
	if err != nil {
		return err
	}
	defer dh.stop()
	id, err := ddcOut(bin, dh.repo, "put", src)
	if err != nil {
		return err
	}
	dp, err := startDaemon(bin, filepath.Join(work, "dplaced"))
	if err != nil {
		return err
	}
	defer dp.stop()
	t0 := time.Now()
	placedID, err := ddcOut(bin, dp.repo, "put", "--in-place", src)
	putT := time.Since(t0)
	if err != nil {
		return err
	}
	if placedID != id {
		return fmt.Errorf("put --in-place gave %s, put %s of the same bytes", placedID, id)
	}
	gb := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e9 }
	ratio := func(a, b time.Duration) time.Duration {
		return time.Duration(float64(time.Second) * a.Seconds() / b.Seconds())
	}
	var landT, cliT, copyT, placedT, cliR, copyR, servedR, landCPU, cliCPU []time.Duration
	for i := range runs + 1 {
		getter, err := benchNode(filepath.Join(work, fmt.Sprintf("getter-%d", i)), sender)
		if err != nil {
			return err
		}
		u0 := usageNow()
		l, err := readRawFileToDisk(getter.Host(), sender.ID(), size, filepath.Join(work, "landed"))
		lcpu := usageNow().cpu - u0.cpu
		getter.Close()
		os.RemoveAll(filepath.Join(work, fmt.Sprintf("getter-%d", i)))
		if err != nil {
			return err
		}
		c, ccpu, err := freshCLIGetCPU(bin, filepath.Join(work, fmt.Sprintf("dgetter-%d", i)), dh, id, size)
		if err != nil {
			return err
		}
		k, err := freshCLIGet(bin, filepath.Join(work, fmt.Sprintf("dcopier-%d", i)), dh, id, size, "--copy")
		if err != nil {
			return err
		}
		p, err := freshCLIGet(bin, filepath.Join(work, fmt.Sprintf("dplacedgetter-%d", i)), dp, id, size)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "pair %d: raw stream from a file into disk %.2f GB/s (%.2f CPU-s); ddc get %.2f GB/s (%.2f×; %.2f CPU-s), --copy %.2f GB/s (%.2f×); from in-place pieces %.2f GB/s (%.2f× from blocks)\n",
			i, gb(l), lcpu.Seconds(), gb(c), l.Seconds()/c.Seconds(), ccpu.Seconds(), gb(k), l.Seconds()/k.Seconds(), gb(p), c.Seconds()/p.Seconds())
		if i > 0 { // the first pair warms up
			landT, cliT, copyT, placedT = append(landT, l), append(cliT, c), append(copyT, k), append(placedT, p)
			landCPU, cliCPU = append(landCPU, lcpu), append(cliCPU, ccpu)
			cliR, copyR, servedR = append(cliR, ratio(l, c)), append(copyR, ratio(l, k)), append(servedR, ratio(c, p))
		}
	}
	hashT, err := hashFile(src)
	if err != nil {
		return err
	}
	floor := fmt.Sprintf("raw libp2p stream, its sender reading the file, into O_DIRECT file + fdatasync %.2f GB/s", gb(med(landT)))
	// What the machine's cores allow: each end's CPU time, and the least
	// wall time they take on the cores there are.
	cores := float64(runtime.NumCPU())
	cpuRow := result{name: "CPU time of a get of " + human(size) + ", both ends (the daemons, or the floor's process)",
		value:    fmt.Sprintf("%.2f CPU-s (%.2f s on %.0f cores at best)", med(cliCPU).Seconds(), med(cliCPU).Seconds()/cores, cores),
		baseline: fmt.Sprintf("the floor %.2f CPU-s; one-core SHA-256 of the bytes %.2f s", med(landCPU).Seconds(), hashT.Seconds()),
		ratio:    fmt.Sprintf("%.2f× the floor's", med(cliCPU).Seconds()/med(landCPU).Seconds()), target: "(informative: the bound the cores set)", ok: true}
	rows := []result{
		{name: "ddc get " + human(size) + " -o FILE (CLI process through its daemon; pieces kept in place) from 1 daemon", value: fmt.Sprintf("%.2f GB/s", gb(med(cliT))),
			baseline: floor, ratio: fmt.Sprintf("%.2f× (median of %d pairs)", med(cliR).Seconds(), len(cliR)), target: "≥ 0.9×", ok: med(cliR).Seconds() >= 0.9},
		{name: "the same get with --copy (the node stores a copy of its own too)", value: fmt.Sprintf("%.2f GB/s", gb(med(copyT))),
			baseline: "the same floor", ratio: fmt.Sprintf("%.2f× (median of %d pairs)", med(copyR).Seconds(), len(copyR)), target: "(informative: each byte written twice)", ok: true},
		{name: "ddc get served by a holder whose pieces lie in place (put --in-place)", value: fmt.Sprintf("%.2f GB/s", gb(med(placedT))),
			baseline: fmt.Sprintf("the same get from block-stored pieces %.2f GB/s", gb(med(cliT))),
			ratio:    fmt.Sprintf("%.2f× (median of %d pairs)", med(servedR).Seconds(), len(servedR)), target: "≥ 0.95×", ok: med(servedR).Seconds() >= 0.95},
		{name: "ddc put --in-place " + human(size) + " (warm page cache, through the daemon)", value: fmt.Sprintf("%.2f GB/s", gb(putT)),
			baseline: fmt.Sprintf("one-core SHA-256 of the same bytes %.2f GB/s", gb(hashT)),
			ratio:    fmt.Sprintf("%.2f× (one run)", hashT.Seconds()/putT.Seconds()), target: "≥ 1.3×", ok: hashT.Seconds()/putT.Seconds() >= 1.3},
	}
	rows = append(rows, cpuRow)
	row, err := firstGets(bin, work, dh, fresh)
	if err != nil {
		return err
	}
	rows = append(rows, row)
	return report(fmt.Sprintf("ddc CLI benchmark: daemons on loopback, %s file, %d runs (median)", human(size), runs), rows)
}

// writeSeeded writes size seeded random bytes to a new file at path.
func writeSeeded(path string, size int64, seed byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.CopyBuffer(f, io.LimitReader(rand.NewChaCha8([32]byte{seed}), size), make([]byte, 1<<20))
	if err == nil {
		err = f.Sync() // a file put in place has long been on disk, as a user's file has
	}
	return errors.Join(err, f.Close())
}

// workWithDDC makes a work directory in dir and builds ddc into it; the
// caller removes work.
func workWithDDC(dir, prefix string) (work, bin string, err error) {
	if work, err = os.MkdirTemp(dir, prefix); err != nil {
		return "", "", err
	}
	bin = filepath.Join(work, "ddc")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/ddc").CombinedOutput(); err != nil {
		os.RemoveAll(work)
		return "", "", fmt.Errorf("build ddc: %v\n%s", err, out)
	}
	return work, bin, nil
}

// cliPut puts size seeded random bytes through 'ddc put -' on the repo.
func cliPut(bin, repoPath string, size int64, seed byte, args ...string) (string, error) {
	put := exec.Command(bin, append([]string{"--repo", repoPath, "put", "-"}, args...)...)
	put.Stdin = io.LimitReader(rand.NewChaCha8([32]byte{seed}), size)
	out, err := put.Output()
	if err != nil {
		return "", fmt.Errorf("put %s: %w", human(size), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// freshCLIGet starts a new daemon bootstrapped off from, waits until it
// is connected, and times 'ddc get' of id as a separate process.
func freshCLIGet(bin, path string, from *benchDaemon, id string, size int64, getArgs ...string) (time.Duration, error) {
	took, _, err := freshCLIGetCPU(bin, path, from, id, size, getArgs...)
	return took, err
}

// freshCLIGetCPU is freshCLIGet that also reports the CPU time the two
// daemons spent meanwhile.
func freshCLIGetCPU(bin, path string, from *benchDaemon, id string, size int64, getArgs ...string) (time.Duration, time.Duration, error) {
	d, err := startDaemon(bin, path, "--bootstrap", from.addr)
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(path)
	defer d.stop()
	cpu0 := procCPU(from.pid) + procCPU(d.pid)
	took, err := timedGet(func(args ...string) *exec.Cmd { return exec.Command(bin, args...) }, path, id, size, getArgs...)
	return took, procCPU(from.pid) + procCPU(d.pid) - cpu0, err
}

// procCPU is the user and system CPU time process pid has used so far.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])) // fields from the 3rd
	var ticks int64
	for _, v := range f[11:13] { // utime, stime: the 14th and 15th
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// timedGet waits until the daemon on the repo at path has a peer, then
// times 'ddc get' of id there as a separate process, run through ddc; the
// output is removed after.
func timedGet(ddc func(args ...string) *exec.Cmd, path, id string, size int64, getArgs ...string) (time.Duration, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := ddc("--repo", path, "peers").Output()
		if err == nil && len(strings.TrimSpace(string(out))) > 0 {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("daemon on %s connected to nobody within 30 s", path)
		}
		time.Sleep(10 * time.Millisecond) // polling the node's peer list
	}
	out := path + ".out"
	defer os.Remove(out)
	t0 := time.Now()
	if msg, err := ddc(append([]string{"--repo", path, "get", id, "-o", out}, getArgs...)...).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("ddc get: %v: %s", err, msg)
	}
	took := time.Since(t0)
	if fi, err := os.Stat(out); err != nil || fi.Size() != size {
		return 0, fmt.Errorf("ddc get wrote %v, want %d bytes", fi, size)
	}
	return took, nil
}

// firstGets times the first 'ddc get' of a 1 MiB file on each of n new
// nodes connected to the holder, against the cost of one CLI command
// through the daemon ('ddc node id') on the same nodes.
func firstGets(bin, work string, holder *benchDaemon, n int) (result, error) {
	const size = 1 << 20
	id, err := cliPut(bin, holder.repo, size, 4)
	if err != nil {
		return result{}, err
	}
	var gets, ids []time.Duration
	for i := range n {
		path := filepath.Join(work, fmt.Sprintf("fresh-%d", i))
		d, err := startDaemon(bin, path, "--bootstrap", holder.addr)
		if err != nil {
			return result{}, err
		}
		t0 := time.Now()
		err = exec.Command(bin, "--repo", path, "node", "id").Run()
		ids = append(ids, time.Since(t0))
		if err == nil {
			var g time.Duration
			g, err = timedGet(func(args ...string) *exec.Cmd { return exec.Command(bin, args...) }, path, id, size)
			gets = append(gets, g)
		}
		d.stop()
		os.RemoveAll(path)
		if err != nil {
			return result{}, err
		}
	}
	g, c := med(gets), med(ids)
	return result{name: fmt.Sprintf("first ddc get of 1 MiB on a fresh node, held by a connected peer (%d nodes)", n),
		value: fmt.Sprintf("%.1f ms median (max %.1f ms)", ms(g), ms(maxDur(gets))), baseline: fmt.Sprintf("ddc node id through the daemon %.1f ms", ms(c)),
		ratio: fmt.Sprintf("%.1f× that", g.Seconds()/c.Seconds()), target: "< 100 ms", ok: g < 100*time.Millisecond}, nil
}

func maxDur(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
