//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// runCDC measures content-defined chunking as users run it: 'ddc put
// FILE --chunker cdc' and the default fixed put, copied and in place, each
// through a new daemon whose repo is on tmpfs, against one-core SHA-256 of
// the same bytes, all interleaved in each run; then, on the last daemon of each chunker,
// the file put again after an edit in its middle (overwrite 1 byte,
// insert 1 byte, delete 100 KiB), with how much repo stat grew.
func runCDC(size int64, shm string, runs int) error {
	work, bin, err := workWithDDC(shm, "ddc-cdcbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	src := filepath.Join(work, "src")
	if err := writeSeeded(src, size, 3); err != nil {
		return err
	}
	gb := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e9 }
	chunkers := []string{"cdc", "fixed"}
	modes := []struct{ name, flag string }{{"put", ""}, {"put --in-place", "--in-place"}}
	times := map[string][]time.Duration{}
	last := map[string]*benchDaemon{}
	ids := map[string]string{}
	var hashT []time.Duration
	defer func() {
		for _, d := range last {
			d.stop()
		}
	}()
	for i := range runs + 1 { // the first run warms up
		for _, m := range modes {
			for _, c := range chunkers {
				key := m.name + " --chunker " + c
				if d := last[key]; d != nil {
					d.stop()
					os.RemoveAll(d.repo)
				}
				d, err := startDaemon(bin, filepath.Join(work, fmt.Sprintf("%s-%s-%d", c, m.flag, i)))
				if err != nil {
					return err
				}
				last[key] = d
				args := []string{"put", src, "--chunker", c}
				if m.flag != "" {
					args = append(args, m.flag)
				}
				t0 := time.Now()
				id, err := ddcOut(bin, d.repo, args...)
				took := time.Since(t0)
				if err != nil {
					return err
				}
				if ids[c] != "" && ids[c] != id {
					return fmt.Errorf("%s gave %s, then %s", key, ids[c], id)
				}
				ids[c] = id
				if i > 0 {
					times[key] = append(times[key], took)
				}
			}
		}
		h, err := hashFile(src)
		if err != nil {
			return err
		}
		if i > 0 {
			hashT = append(hashT, h)
		}
	}
	sha := gb(med(hashT))
	var rows []result
	for _, m := range modes {
		for _, c := range chunkers {
			key := m.name + " --chunker " + c
			target, ok := "≥ 1.0×", gb(med(times[key]))/sha >= 1.0
			if c == "fixed" || m.flag == "" {
				target, ok = "(informative)", true
			}
			rows = append(rows, result{name: fmt.Sprintf("ddc %s %s (through the daemon, tmpfs)", key, human(size)),
				value: fmt.Sprintf("%.2f GB/s", gb(med(times[key]))), baseline: fmt.Sprintf("one-core SHA-256 of the same bytes %.2f GB/s", sha),
				ratio: fmt.Sprintf("%.2f× (median of %d)", gb(med(times[key]))/sha, runs), target: target, ok: ok})
		}
	}
	mid := size / 2
	edits := []struct {
		name      string
		rd        func(f *os.File) io.Reader
		cdc, fixd int // most new data pieces; 0: no bound
	}{
		{"overwrite 1 byte", func(f *os.File) io.Reader {
			b := make([]byte, 1)
			f.ReadAt(b, mid)
			return io.MultiReader(io.NewSectionReader(f, 0, mid), strings.NewReader(string([]byte{^b[0]})), io.NewSectionReader(f, mid+1, size))
		}, 2, 2},
		{"insert 1 byte", func(f *os.File) io.Reader {
			return io.MultiReader(io.NewSectionReader(f, 0, mid), strings.NewReader("x"), io.NewSectionReader(f, mid, size))
		}, 3, 0},
		{"delete 100 KiB", func(f *os.File) io.Reader {
			return io.MultiReader(io.NewSectionReader(f, 0, mid), io.NewSectionReader(f, mid+100<<10, size))
		}, 0, 0},
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, c := range chunkers {
		d := last["put --chunker "+c]
		st, err := fileStat(bin, d.repo, ids[c])
		if err != nil {
			return err
		}
		for _, e := range edits {
			before, err := repoUsage(bin, d.repo)
			if err != nil {
				return err
			}
			put := exec.Command(bin, "--repo", d.repo, "put", "-", "--chunker", c)
			put.Stdin = e.rd(f)
			out, err := put.Output()
			if err != nil {
				return fmt.Errorf("put %s after %s: %w", c, e.name, err)
			}
			after, err := repoUsage(bin, d.repo)
			if err != nil {
				return err
			}
			est, err := fileStat(bin, d.repo, strings.TrimSpace(string(out)))
			if err != nil {
				return err
			}
			grew := int(after.Pieces - before.Pieces)
			data := grew - est.Descriptors // every descriptor of the edited file counted new
			most := e.cdc
			if c == "fixed" {
				most = e.fixd
			}
			target, ok := "(informative)", true
			if most > 0 {
				target, ok = fmt.Sprintf("≤ %d new data pieces", most), data <= most
			}
			rows = append(rows, result{name: fmt.Sprintf("--chunker %s, %s in the middle, put again", c, e.name),
				value:    fmt.Sprintf("+%d pieces (%d data, %d descriptors), +%.1f MiB", grew, data, est.Descriptors, float64(after.PieceBytes-before.PieceBytes)/(1<<20)),
				baseline: fmt.Sprintf("the file: %d pieces, %d MiB", st.Pieces, size>>20),
				ratio:    fmt.Sprintf("%.2f%% of its pieces new", 100*float64(grew)/float64(st.Pieces)), target: target, ok: ok})
		}
	}
	return report(fmt.Sprintf("ddc content-defined chunking benchmark: %s file, %d runs (median)", human(size), runs), rows)
}

type cdcUsage struct {
	Pieces     uint64 `json:"pieces"`
	PieceBytes uint64 `json:"piece_bytes"`
}

func repoUsage(bin, repoPath string) (cdcUsage, error) {
	var u cdcUsage
	out, err := ddcOut(bin, repoPath, "repo", "stat", "--json")
	if err == nil {
		err = json.Unmarshal([]byte(out), &u)
	}
	return u, err
}

type cdcStat struct {
	Pieces      int `json:"pieces"`
	Descriptors int `json:"descriptors"`
}

func fileStat(bin, repoPath, id string) (cdcStat, error) {
	var s cdcStat
	out, err := ddcOut(bin, repoPath, "stat", id, "--json")
	if err == nil {
		err = json.Unmarshal([]byte(out), &s)
	}
	return s, err
}
