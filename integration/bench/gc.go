//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// runGC measures what a GC gives back, as a user runs it: four files of
// size put with 'ddc put', three unpinned, then 'ddc repo gc' as a
// separate process, timed to its exit (the space is back by then), and
// what the blocks take on disk after it (as du counts it) against the
// live bytes. Kubo's 'ipfs repo gc' on the same four files, three
// unpinned, is the baseline, in the same run, when kubo names its binary.
func runGC(size int64, dir, kubo string) error {
	work, bin, err := workWithDDC(dir, "ddc-gcbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	repoPath := filepath.Join(work, "repo")
	if _, err := ddcOut(bin, repoPath, "init"); err != nil {
		return err
	}
	var ids []string
	for i := range 4 {
		id, err := cliPut(bin, repoPath, size, byte(40+i))
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	before := duDir(filepath.Join(repoPath, "store", "blocks"))
	for _, id := range ids[:3] {
		if _, err := ddcOut(bin, repoPath, "pin", "rm", id); err != nil {
			return err
		}
	}
	t0 := time.Now()
	if _, err := ddcOut(bin, repoPath, "repo", "gc"); err != nil {
		return err
	}
	gcT := time.Since(t0)
	after := duDir(filepath.Join(repoPath, "store", "blocks"))
	var st struct {
		Live uint64 `json:"piece_bytes"`
	}
	out, err := ddcOut(bin, repoPath, "repo", "stat", "--json")
	if err == nil {
		err = json.Unmarshal([]byte(out), &st)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "ddc: du %s -> %s, live %s, gc %.2fs\n", human(before), human(after), human(int64(st.Live)), gcT.Seconds())

	kuboT, kuboBefore, kuboAfter, kerr := kuboGC(kubo, work, size)
	var base, ratio string
	if kerr != nil {
		base, ratio = "Kubo not run: "+kerr.Error(), "-"
	} else {
		base = fmt.Sprintf("Kubo's ipfs repo gc %.2f s (du %s -> %s)", kuboT.Seconds(), human(kuboBefore), human(kuboAfter))
		ratio = fmt.Sprintf("%.2f× Kubo's time", gcT.Seconds()/kuboT.Seconds())
	}
	limit := 1.1*float64(st.Live) + 64<<20
	rows := []result{
		{name: fmt.Sprintf("repo gc after unpinning 3 of 4 files of %s, to its exit, space back", human(size)), value: fmt.Sprintf("%.2f s", gcT.Seconds()),
			baseline: base, ratio: ratio, target: "≤ 30 s", ok: gcT <= 30*time.Second},
		{name: "what the blocks take on disk after it (du)", value: human(after), baseline: fmt.Sprintf("live %s (before: du %s)", human(int64(st.Live)), human(before)),
			ratio: fmt.Sprintf("%.3f× live", float64(after)/float64(st.Live)), target: "≤ 1.1× live + 64 MiB", ok: float64(after) <= limit},
	}
	return report(fmt.Sprintf("gc suite: 4 files of %s, 3 unpinned", human(size)), rows)
}

// kuboGC does as runGC does with Kubo, when kubo names its binary: the
// same four files added (and pinned), three unpinned, 'ipfs repo gc'
// timed; it returns the time and du of the blocks before and after.
func kuboGC(kubo, work string, size int64) (time.Duration, int64, int64, error) {
	if kubo == "" {
		return 0, 0, 0, fmt.Errorf("no -kubo binary given")
	}
	ipfsPath := filepath.Join(work, "kubo")
	run := func(stdin io.Reader, args ...string) (string, error) {
		cmd := exec.Command(kubo, args...)
		cmd.Env = append(os.Environ(), "IPFS_PATH="+ipfsPath)
		cmd.Stdin = stdin
		out, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); ok {
			err = fmt.Errorf("ipfs %v: %s", args, ee.Stderr)
		}
		return strings.TrimSpace(string(out)), err
	}
	if _, err := run(nil, "init", "--profile", "test"); err != nil {
		return 0, 0, 0, err
	}
	var ids []string
	for i := range 4 {
		id, err := run(io.LimitReader(rand.NewChaCha8([32]byte{byte(40 + i)}), size), "add", "-Q", "--chunker", "size-1048576")
		if err != nil {
			return 0, 0, 0, err
		}
		ids = append(ids, id)
	}
	before := duDir(filepath.Join(ipfsPath, "blocks"))
	for _, id := range ids[:3] {
		if _, err := run(nil, "pin", "rm", id); err != nil {
			return 0, 0, 0, err
		}
	}
	t0 := time.Now()
	if _, err := run(nil, "repo", "gc", "-q"); err != nil {
		return 0, 0, 0, err
	}
	return time.Since(t0), before, duDir(filepath.Join(ipfsPath, "blocks")), nil
}

// duDir is what the files under dir take on disk, as du counts it.
func duDir(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}
