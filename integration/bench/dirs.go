//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// runDirs measures trees through the CLI, as separate processes: put -r
// of 10,000 files of 4 KiB through the daemon, get -o of the tree from
// one remote node, each beside the floor of reading (tar -c) or writing
// (tar -x) the same tree on this machine, and beside Kubo's ipfs add -r
// and ipfs get when kubo names its binary; then a cold resolve of one
// name in a directory of 100,000 entries, with the pieces it read.
func runDirs(dir string, runs int, kubo string) error {
	work, bin, err := workWithDDC(dir, "ddc-bench-dirs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	const files = 10_000
	holder, err := startDaemon(bin, filepath.Join(work, "holder"))
	if err != nil {
		return err
	}
	defer holder.stop()
	var rows []result
	var putT, getT, readT, writeT, kAddT, kGetT []time.Duration
	var kh *kuboNode
	if kubo != "" {
		if kh, err = startKubo(kubo, filepath.Join(work, "kubo-holder")); err != nil {
			return err
		}
		defer kh.stop()
	}
	for run := range runs {
		tree := filepath.Join(work, fmt.Sprintf("tree%d", run))
		if err := smallTree(tree, files, uint64(run)); err != nil {
			return err
		}
		d, err := timed(exec.Command("sh", "-c", "tar -cf - -C "+tree+" . | cat > /dev/null"))
		if err != nil {
			return err
		}
		readT = append(readT, d)
		tarFile := filepath.Join(work, fmt.Sprintf("tree%d.tar", run))
		if out, err := exec.Command("tar", "-cf", tarFile, "-C", tree, ".").CombinedOutput(); err != nil {
			return fmt.Errorf("tar: %v %s", err, out)
		}
		untar := filepath.Join(work, fmt.Sprintf("untar%d", run))
		os.MkdirAll(untar, 0o755)
		if d, err = timed(exec.Command("sh", "-c", "tar -xf "+tarFile+" -C "+untar+" && sync -f "+untar)); err != nil {
			return err
		}
		writeT = append(writeT, d)

		put := exec.Command(bin, "--repo", holder.repo, "put", "-r", tree)
		start := time.Now()
		out, err := put.Output()
		if err != nil {
			return fmt.Errorf("put -r: %w", err)
		}
		putT = append(putT, time.Since(start))
		root := strings.TrimSpace(string(out))

		getter, err := startDaemon(bin, filepath.Join(work, fmt.Sprintf("getter%d", run)), "--bootstrap", holder.addr)
		if err != nil {
			return err
		}
		got := filepath.Join(work, fmt.Sprintf("got%d", run))
		d, err = timed(exec.Command(bin, "--repo", getter.repo, "get", root, "-o", got))
		getter.stop()
		if err != nil {
			return fmt.Errorf("get tree: %w", err)
		}
		getT = append(getT, d)

		if kh != nil {
			start := time.Now()
			kroot, err := kh.ipfs("add", "-r", "-Q", tree)
			if err != nil {
				return err
			}
			kAddT = append(kAddT, time.Since(start))
			kg, err := startKubo(kubo, filepath.Join(work, fmt.Sprintf("kubo-getter%d", run)))
			if err != nil {
				return err
			}
			if _, err := kg.ipfs("swarm", "connect", kh.swarm); err != nil {
				kg.stop()
				return err
			}
			start = time.Now()
			_, err = kg.ipfs("get", "-o", filepath.Join(work, fmt.Sprintf("kgot%d", run)), kroot)
			kGetT = append(kGetT, time.Since(start))
			kg.stop()
			if err != nil {
				return err
			}
		}
		os.RemoveAll(untar)
		os.RemoveAll(got)
	}
	rate := func(d time.Duration) float64 { return files / d.Seconds() }
	kuboNote := func(ds []time.Duration, what string) string {
		if len(ds) == 0 {
			return ""
		}
		return fmt.Sprintf("; Kubo's %s %.0f files/s", what, rate(med(ds)))
	}
	p, r := rate(med(putT)), rate(med(readT))
	rows = append(rows, result{name: "put -r of 10,000 files of 4 KiB, through the daemon", value: fmt.Sprintf("%.0f files/s", p),
		baseline: fmt.Sprintf("tar -c of the tree %.0f files/s%s", r, kuboNote(kAddT, "ipfs add -r")), ratio: fmt.Sprintf("%.2f×", p/r),
		target: "≥ 5,000 files/s", ok: p >= 5000})
	g, wr := rate(med(getT)), rate(med(writeT))
	rows = append(rows, result{name: "get -o of the tree from one remote node", value: fmt.Sprintf("%.0f files/s", g),
		baseline: fmt.Sprintf("tar -x of the tree %.0f files/s%s", wr, kuboNote(kGetT, "ipfs get")), ratio: fmt.Sprintf("%.2f×", g/wr),
		target: "≥ 2,000 files/s", ok: g >= 2000})
	big, err := bigDirRows(bin, work, holder)
	if err != nil {
		return err
	}
	return report("Directories (CLI processes, loopback)", append(rows, big...))
}

// bigDirRows puts a folder of 100,000 empty files and resolves one name
// from a node that has seen none of it.
func bigDirRows(bin, work string, holder *benchDaemon) ([]result, error) {
	const n = 100_000
	big := filepath.Join(work, "big")
	if err := os.MkdirAll(big, 0o755); err != nil {
		return nil, err
	}
	for i := range n {
		f, err := os.Create(filepath.Join(big, fmt.Sprintf("entry-%06d", i)))
		if err != nil {
			return nil, err
		}
		f.Close()
	}
	out, err := exec.Command(bin, "--repo", holder.repo, "put", "-r", big).Output()
	if err != nil {
		return nil, fmt.Errorf("put -r of 100,000 entries: %w", err)
	}
	root := strings.TrimSpace(string(out))
	cold, err := startDaemon(bin, filepath.Join(work, "cold"), "--bootstrap", holder.addr)
	if err != nil {
		return nil, err
	}
	defer cold.stop()
	var l struct {
		Pieces int `json:"pieces_read"`
	}
	ls := exec.Command(bin, "--repo", cold.repo, "ls", "--json", root+"/entry-054321")
	start := time.Now()
	b, err := ls.Output()
	coldT := time.Since(start)
	if err == nil {
		err = json.Unmarshal(b, &l)
	}
	if err != nil {
		return nil, fmt.Errorf("cold resolve: %w", err)
	}
	idT, err := timed(exec.Command(bin, "--repo", cold.repo, "node", "id"))
	if err != nil {
		return nil, err
	}
	return []result{{name: "resolve one name of 100,000 from a cold node (ls CID/NAME)", value: fmt.Sprintf("%d pieces read, %.0f ms", l.Pieces, ms(coldT)),
		baseline: fmt.Sprintf("ddc node id through the same CLI %.0f ms; log₂ 100,000 = 17", ms(idT)), ratio: "—",
		target: "O(log n) pieces", ok: l.Pieces <= 3}}, nil
}

// smallTree writes n files of 4 KiB into 100 folders of 10 groups.
func smallTree(dir string, n int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 99))
	buf := make([]byte, 4096)
	for i := range n {
		d := filepath.Join(dir, fmt.Sprintf("g%d", i%10), fmt.Sprintf("d%02d", i%100))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%05d", i)), buf, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func timed(cmd *exec.Cmd) (time.Duration, error) {
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%v: %v %s", cmd.Args, err, out)
	}
	return time.Since(start), nil
}
