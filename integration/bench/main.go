//go:build linux

// Command bench measures ddc's local figures against baselines taken in the
// same run, and prints them as a Markdown table for docs/benchmarks.md:
//
//	go run ./integration/bench [-size 1GiB] [-shm /dev/shm] [-disk /var/tmp] [-runs 3]
//	go run ./integration/bench -suite net [-size 1GiB] [-stream 10GiB]
//	go run ./integration/bench -suite private [-size 1GiB] [-runs 3]
//	go run ./integration/bench -suite search [-runs 3]
//	go run ./integration/bench -suite access [-size 1GiB] [-runs 5] [-reads 200] [-before REV]
//	go run ./integration/bench -suite gc [-size 1GiB] [-kubo PATH/TO/ipfs]
//	go run ./integration/bench -suite browser [-kubo PATH/TO/ipfs]
//	go run ./integration/bench -suite replicas [-size 1GiB]
//	go run ./integration/bench -suite dirs [-runs 3] [-kubo PATH/TO/ipfs]
//	go run ./integration/bench -suite names [-runs 3]
//	go run ./integration/bench -suite cdc [-size 1GiB] [-runs 3] [-shm /dev/shm]
//
// The local suite builds the ddc binary and runs it as a user would (put, cat, get as
// separate processes, peak RSS from the kernel's rusage); the random-read
// latency is measured in-process through the same repo API the CLI uses.
// It runs on Linux only: its baselines use O_DIRECT, fdatasync, network
// namespaces and the kernel's rusage.
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-role" { // one end of a raw stream (lan suite)
		if err := runRole(os.Args[2], os.Args[3:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	size := flag.Int64("size", 1<<30, "file size in bytes")
	shm := flag.String("shm", "/dev/shm", "a tmpfs directory")
	disk := flag.String("disk", "/var/tmp", "a directory on disk")
	runs := flag.Int("runs", 3, "repetitions of each timed step (the median is reported)")
	reads := flag.Int("reads", 2000, "random 64 KiB ReadAt samples")
	suite := flag.String("suite", "local", "local (store and CLI), net (two nodes on loopback), cli (ddc get through daemons), lan (daemons in network namespaces) private (a private bucket's get against a public one) search (a bucket search across ten daemons), gateway (seeks and streams through a node's HTTP gateway), access (what the access rule costs the gateway's reads) gc (what repo gc gives back, beside Kubo's), browser (media seeks in headless Chromium, beside static files and Kubo's gateway), replicas (replication, repair and its background cost in a private cluster), names (name resolve and publish on the LAN bed), cdc (put with content-defined chunking through the daemon, and the pieces an edit adds) dirs (trees through put -r and get, and a large directory's lookup) or trustless (/ipfs/ CARs and entity-bytes ranges of a ddc and a UnixFS file, beside ddc export and the code before)")
	before := flag.String("before", "333301c", "access, trustless: the git revision to compare with (access: the code before the access rule; trustless: before boxo served /ipfs/, 447c71e)")
	kubo := flag.String("kubo", "", "gc, browser, dirs: Kubo's ipfs binary, whose repo gc or gateway is the baseline")
	fresh := flag.Int("fresh", 20, "cli: fresh nodes whose first get of 1 MiB is timed")
	stream := flag.Int64("stream", 10<<30, "net: bytes streamed between two daemons for the peak RSS figure (0 skips it)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process to the file")
	flag.StringVar(&traceFile, "trace", "", "net: write an execution trace of the last timed get to the file")
	flag.StringVar(&memProfile, "memprofile", "", "net: write the allocations made up to the end of the last timed get to the file")
	flag.StringVar(&getProfile, "getprofile", "", "net: write a CPU profile of the last timed get to the file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	var err error
	switch *suite {
	case "local":
		err = run(*size, *shm, *disk, *runs, *reads)
	case "net":
		err = runNet(*size, *disk, *runs, *reads, *stream)
	case "cli":
		err = runCLI(*size, *disk, *runs, *fresh)
	case "lan":
		err = runLAN(*size, *disk, *runs)
	case "private":
		err = runPrivate(*size, *disk, *runs)
	case "search":
		err = runSearch(*disk, *runs)
	case "gateway":
		err = runGateway(*size, *disk, *runs, *reads)
	case "access":
		err = runAccess(*size, *disk, *runs, *reads, *before)
	case "gc":
		err = runGC(*size, *disk, *kubo)
	case "browser":
		err = runBrowser(*disk, *kubo)
	case "replicas":
		err = runReplicas(*size, *disk)
	case "dirs":
		err = runDirs(*disk, *runs, *kubo)
	case "names":
		err = runNames(*disk, *runs)
	case "cdc":
		err = runCDC(*size, *shm, *runs)
	case "trustless":
		err = runTrustless(*size, *disk, *runs, min(*reads, 200), *before)
	default:
		err = fmt.Errorf("-suite %q: want local, net, cli, lan, private, search, gateway, access, gc, browser, replicas, names, cdc or dirs", *suite)
	}
	pprof.StopCPUProfile() // does nothing when not profiling
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// result is one row of the report.
type result struct {
	name, value, baseline, ratio, target string
	ok                                   bool
}

func run(size int64, shm, disk string, runs, reads int) error {
	work, err := os.MkdirTemp(shm, "ddc-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	diskWork, err := os.MkdirTemp(disk, "ddc-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(diskWork)

	bin := filepath.Join(work, "ddc")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/ddc").CombinedOutput(); err != nil {
		return fmt.Errorf("build ddc: %v\n%s", err, out)
	}
	input := filepath.Join(work, "input")
	if err := writeRandom(input, size); err != nil {
		return err
	}
	gb := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e9 }
	var rows []result

	// 1. put onto tmpfs vs single-core SHA-256 of the same bytes. Each run
	// puts into a new repo and the previous one is removed first, so runs
	// reuse memory the kernel has handed out before: the first write of
	// never-touched memory in a fresh VM costs 3-4x (see docs/benchmarks.md)
	// and is reported on its own as the cold run.
	hashT := median(runs, func() (time.Duration, error) { return hashFile(input) })
	var putRSS int64
	var shmRepo, id string
	var coldT time.Duration
	putT := median(runs+1, func() (time.Duration, error) {
		if shmRepo != "" {
			os.RemoveAll(shmRepo)
		}
		shmRepo = filepath.Join(work, fmt.Sprintf("repo-%d", rand.Int()))
		if _, _, err := ddc(bin, shmRepo, nil, "init"); err != nil {
			return 0, err
		}
		d, rss, out, err := ddcTimed(bin, shmRepo, "put", input)
		putRSS = max(putRSS, rss)
		id = strings.TrimSpace(out)
		if coldT == 0 {
			coldT = d
		}
		return d, err
	})
	rows = append(rows, ratioRow("put 1 file to tmpfs", gb(putT), "single-core SHA-256", gb(hashT), 0.7))
	rows = append(rows, result{name: "put to tmpfs, first (cold) run", value: fmt.Sprintf("%.2f GB/s", gb(coldT)),
		baseline: fmt.Sprintf("SHA-256 %.2f GB/s", gb(hashT)), ratio: fmt.Sprintf("%.2f×", gb(coldT)/gb(hashT)), target: "(informative)", ok: true})

	// 2. durable put onto disk vs plain append + fdatasync of the same bytes.
	// Runs are interleaved so both see the same disk weather, and each
	// starts with nothing of the previous run on disk, so both write into
	// memory the kernel has recycled. The first pair is a warm-up.
	var appendT, diskPutT []time.Duration
	for i := range runs + 1 {
		os.RemoveAll(diskWork)
		if err := os.MkdirAll(diskWork, 0o755); err != nil {
			return err
		}
		d, err := appendSync(input, filepath.Join(diskWork, "append"))
		if err != nil {
			return err
		}
		diskRepo := filepath.Join(diskWork, "repo")
		if _, _, err := ddc(bin, diskRepo, nil, "init"); err != nil {
			return err
		}
		p, _, _, err := ddcTimed(bin, diskRepo, "put", input)
		if err != nil {
			return err
		}
		if i > 0 {
			appendT, diskPutT = append(appendT, d), append(diskPutT, p)
			fmt.Fprintf(os.Stderr, "disk pair %d: append+fdatasync %.2f GB/s, put %.2f GB/s, ratio %.2f\n", i, gb(d), gb(p), d.Seconds()/p.Seconds())
		}
	}
	// The ratio of each interleaved pair, then the median of those: a pair
	// shares the disk's state, which medians taken apart would not.
	ratios := make([]time.Duration, len(appendT))
	for i := range appendT {
		ratios[i] = time.Duration(float64(time.Second) * appendT[i].Seconds() / diskPutT[i].Seconds())
	}
	diskRatio := med(ratios).Seconds()
	rows = append(rows, result{name: "put 1 file to disk, durable", value: fmt.Sprintf("%.2f GB/s", gb(med(diskPutT))),
		baseline: fmt.Sprintf("append + fdatasync %.2f GB/s", gb(med(appendT))), ratio: fmt.Sprintf("%.2f× (median of %d pairs)", diskRatio, len(ratios)),
		target: "≥ 0.85×", ok: diskRatio >= 0.85})

	// 3. cat of the whole file from the tmpfs repo, into a pipe.
	var catRSS int64
	catT := median(runs, func() (time.Duration, error) {
		d, rss, err := catToPipe(bin, shmRepo, id, size)
		catRSS = max(catRSS, rss)
		return d, err
	})
	rows = append(rows, result{name: "cat 1 file from the repo", value: fmt.Sprintf("%.2f GB/s", gb(catT)),
		baseline: fmt.Sprintf("SHA-256 %.2f GB/s", gb(hashT)), ratio: fmt.Sprintf("%.2f× SHA-256", gb(catT)/gb(hashT)),
		target: "≥ 1 GB/s", ok: gb(catT) >= 1})

	// 4. get -o into a file, for its peak RSS.
	var getRSS int64
	median(1, func() (time.Duration, error) {
		d, rss, _, err := ddcTimed(bin, shmRepo, "get", id, "-o", filepath.Join(work, "out"))
		getRSS = rss
		os.Remove(filepath.Join(work, "out"))
		return d, err
	})

	// 5. random 64 KiB ReadAt, in-process, through the repo API.
	p50, p99, err := randomReads(shmRepo, id, size, reads)
	if err != nil {
		return err
	}
	sum := sha256.New()
	buf := make([]byte, 64<<10)
	t0 := time.Now()
	for range 1000 {
		sum.Write(buf)
	}
	hash64 := time.Since(t0) / 1000
	rows = append(rows, result{name: "random 64 KiB ReadAt, median", value: fmt.Sprintf("%.3f ms (p99 %.3f ms)", ms(p50), ms(p99)),
		baseline: fmt.Sprintf("SHA-256 of 64 KiB %.3f ms", ms(hash64)), ratio: fmt.Sprintf("%.1f× that", float64(p50)/float64(hash64)),
		target: "< 1 ms", ok: p50 < time.Millisecond})

	const mib = 1 << 20
	for _, r := range []struct {
		what string
		rss  int64
	}{{"put", putRSS}, {"cat", catRSS}, {"get", getRSS}} {
		rows = append(rows, result{name: "peak RSS of " + r.what, value: fmt.Sprintf("%d MiB", r.rss/mib),
			baseline: "-", ratio: "-", target: "< 100 MiB", ok: r.rss < 100*mib})
	}

	return report(fmt.Sprintf("ddc local benchmark: %s file, %d runs (median)", human(size), runs), rows)
}

// report prints rows as a Markdown table and fails when a figure missed
// its target.
func report(title string, rows []result) error {
	fmt.Printf("%s, %d CPUs, %s, %s\n\n", title, runtime.NumCPU(), runtime.Version(), time.Now().UTC().Format("2006-01-02"))
	fmt.Println("| figure | ddc | baseline (same run) | ratio | target | met |")
	fmt.Println("|---|---|---|---|---|---|")
	failed := 0
	for _, r := range rows {
		met := "yes"
		if !r.ok {
			met, failed = "**no**", failed+1
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", r.name, r.value, r.baseline, r.ratio, r.target, met)
	}
	if failed > 0 {
		return fmt.Errorf("%d figures missed their target", failed)
	}
	return nil
}

func ratioRow(name string, v float64, base string, b, target float64) result {
	return result{name: name, value: fmt.Sprintf("%.2f GB/s", v), baseline: fmt.Sprintf("%s %.2f GB/s", base, b),
		ratio: fmt.Sprintf("%.2f×", v/b), target: fmt.Sprintf("≥ %.2f×", target), ok: v/b >= target}
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func human(n int64) string {
	if n >= 1<<30 && n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

func median(runs int, f func() (time.Duration, error)) time.Duration {
	var ds []time.Duration
	for range runs {
		d, err := f()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		ds = append(ds, d)
	}
	return med(ds)
}

func med(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func writeRandom(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyN(f, rand.NewChaCha8([32]byte{1}), size)
	return err
}

// hashFile is the hashing baseline: one core, SHA-256 over the file read in
// 1 MiB chunks, as a put must read and hash it.
func hashFile(path string) (time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	t0 := time.Now()
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			sha256.Sum256(buf[:n])
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	return time.Since(t0), nil
}

// appendSync is the disk baseline: the same bytes appended in 1 MiB writes
// to a new file, then one fdatasync.
func appendSync(src, dst string) (time.Duration, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	defer os.Remove(dst)
	t0 := time.Now()
	out, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, buf); err != nil {
		return 0, err
	}
	if err := unix.Fdatasync(int(out.Fd())); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

func ddc(bin, repoPath string, stdout io.Writer, args ...string) (*os.ProcessState, string, error) {
	cmd := exec.CommandContext(context.Background(), bin, append([]string{"--repo", repoPath}, args...)...)
	var out strings.Builder
	cmd.Stdout = &out
	if stdout != nil {
		cmd.Stdout = stdout
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return nil, "", fmt.Errorf("ddc %v: %v: %s", args, err, errb.String())
	}
	return cmd.ProcessState, out.String(), nil
}

func ddcTimed(bin, repoPath string, args ...string) (time.Duration, int64, string, error) {
	t0 := time.Now()
	st, out, err := ddc(bin, repoPath, nil, args...)
	if err != nil {
		return 0, 0, "", err
	}
	return time.Since(t0), maxRSS(st), out, nil
}

func maxRSS(st *os.ProcessState) int64 {
	return st.SysUsage().(*syscall.Rusage).Maxrss * 1024 // KiB on Linux
}

// catToPipe runs 'ddc cat' into a pipe this process drains and counts.
func catToPipe(bin, repoPath, id string, size int64) (time.Duration, int64, error) {
	cmd := exec.Command(bin, "--repo", repoPath, "cat", id)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	// io.Discard's ReadFrom would read in 8 KiB steps; hide it.
	n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, out, make([]byte, 1<<20))
	if werr := cmd.Wait(); err == nil {
		err = werr
	}
	d := time.Since(t0)
	if err == nil && n != size {
		err = fmt.Errorf("cat returned %d bytes, want %d", n, size)
	}
	if err != nil {
		return 0, 0, err
	}
	return d, maxRSS(cmd.ProcessState), nil
}

func randomReads(repoPath, id string, size int64, n int) (p50, p99 time.Duration, err error) {
	r, err := repo.Open(repoPath, nil)
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	c, err := pieces.ParseCID(id)
	if err != nil {
		return 0, 0, err
	}
	f, err := r.OpenFile(context.Background(), c)
	if err != nil {
		return 0, 0, err
	}
	rng := rand.New(rand.NewPCG(7, 7))
	offs := make([]int64, n)
	for i := range offs {
		offs[i] = rng.Int64N(size - 64<<10)
	}
	return timeReads(f, offs)
}

// timeReads times a 64 KiB ReadAt at each offset and returns the median
// and 99th percentile.
func timeReads(r io.ReaderAt, offs []int64) (p50, p99 time.Duration, err error) {
	buf := make([]byte, 64<<10)
	ds := make([]time.Duration, len(offs))
	for i, off := range offs {
		t0 := time.Now()
		if _, err := r.ReadAt(buf, off); err != nil {
			return 0, 0, err
		}
		ds[i] = time.Since(t0)
	}
	slices.Sort(ds)
	return ds[len(ds)/2], ds[len(ds)*99/100], nil
}
