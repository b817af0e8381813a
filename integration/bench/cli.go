//go:build linux

package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// runCLI measures ddc as users run it: 'ddc get' as a separate process
// through the getter's daemon, from one remote daemon on loopback, against
// the raw libp2p stream landed on the getter's disk (in-process hosts on
// the same machine, same run), with the in-process get beside it; then a
// fresh node's first get of a small file held by a connected peer.
func runCLI(size int64, dir string, runs, fresh int) error {
	work, bin, err := workWithDDC(dir, "ddc-clibench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	// In-process holder: the raw stream and the in-process get.
	holder, res, err := rawHolder(filepath.Join(work, "holder"), size)
	if err != nil {
		return err
	}
	defer holder.Close()
	// Daemon holder: the CLI get.
	dh, err := startDaemon(bin, filepath.Join(work, "dholder"))
	if err != nil {
		return err
	}
	defer dh.stop()
	id, err := cliPut(bin, dh.repo, size, 2)
	if err != nil {
		return err
	}
	if id != res.Root.String() {
		return fmt.Errorf("daemon put %s, in-process put %s of the same bytes", id, res.Root)
	}
	gb := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e9 }
	ratio := func(a, b time.Duration) time.Duration {
		return time.Duration(float64(time.Second) * a.Seconds() / b.Seconds())
	}
	var landT, bothT, inT, cliT, cliR, inR, bothR []time.Duration
	for i := range runs + 1 {
		getter, err := benchNode(filepath.Join(work, fmt.Sprintf("getter-%d", i)), holder)
		if err != nil {
			return err
		}
		l, err := readRawToDisk(getter.Host(), holder.ID(), size, filepath.Join(work, "landed"))
		var g, b time.Duration
		if err == nil {
			b, err = readRawToDiskAndFile(getter.Host(), holder.ID(), size, filepath.Join(work, "landed"), filepath.Join(work, "output"))
		}
		if err == nil {
			g, err = getAll(getter, res.Root, size)
		}
		getter.Close()
		os.RemoveAll(filepath.Join(work, fmt.Sprintf("getter-%d", i)))
		if err != nil {
			return err
		}
		c, err := freshCLIGet(bin, filepath.Join(work, fmt.Sprintf("dgetter-%d", i)), dh, id, size)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "pair %d: raw stream into disk %.2f GB/s, and into an output file too %.2f GB/s, in-process get %.2f GB/s (%.2f×), ddc get %.2f GB/s (%.2f×, %.2f× the second)\n",
			i, gb(l), gb(b), gb(g), l.Seconds()/g.Seconds(), gb(c), l.Seconds()/c.Seconds(), b.Seconds()/c.Seconds())
		if i > 0 { // the first pair warms up
			landT, bothT, inT, cliT = append(landT, l), append(bothT, b), append(inT, g), append(cliT, c)
			cliR, inR, bothR = append(cliR, ratio(l, c)), append(inR, ratio(l, g)), append(bothR, ratio(b, c))
		}
	}
	rows := []result{
		{name: "ddc get " + human(size) + " (CLI process through its daemon) from 1 daemon", value: fmt.Sprintf("%.2f GB/s", gb(med(cliT))),
			baseline: fmt.Sprintf("raw libp2p stream into O_DIRECT file + fdatasync %.2f GB/s", gb(med(landT))),
			ratio:    fmt.Sprintf("%.2f× (median of %d pairs)", med(cliR).Seconds(), len(cliR)), target: "≥ 0.85× (goal 0.95×)", ok: med(cliR).Seconds() >= 0.85},
		{name: "the same ddc get against the raw stream landed on disk and written to an output file", value: fmt.Sprintf("%.2f GB/s", gb(med(cliT))),
			baseline: fmt.Sprintf("raw stream into O_DIRECT file + fdatasync and a page-cache file %.2f GB/s", gb(med(bothT))),
			ratio:    fmt.Sprintf("%.2f× (median of %d pairs)", med(bothR).Seconds(), len(bothR)), target: "(informative: the floor of a get that writes its output)", ok: true},
		{name: "in-process get of the same file (node.Reader, no output file)", value: fmt.Sprintf("%.2f GB/s", gb(med(inT))),
			baseline: "the same", ratio: fmt.Sprintf("%.2f× (median of %d pairs)", med(inR).Seconds(), len(inR)), target: "(informative)", ok: true},
	}
	row, err := firstGets(bin, work, dh, fresh)
	if err != nil {
		return err
	}
	rows = append(rows, row)
	return report(fmt.Sprintf("ddc CLI benchmark: daemons on loopback, %s file, %d runs (median)", human(size), runs), rows)
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
	d, err := startDaemon(bin, path, "--bootstrap", from.addr)
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(path)
	defer d.stop()
	return timedGet(func(args ...string) *exec.Cmd { return exec.Command(bin, args...) }, path, id, size, getArgs...)
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
