//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/ddc-project/ddc/internal/p2ptest"
	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
)

const rawProto = "/ddc-bench/raw/1"

// traceFile, getProfile and memProfile, when set, get an execution trace,
// a CPU profile and the allocations of the last timed get.
var traceFile, getProfile, memProfile string

// runNet measures two nodes on loopback: a whole-file get against one raw
// libp2p stream between the same hosts, a remote seek's first byte, and
// the peak RSS of daemons streaming a large file.
func runNet(size int64, dir string, runs, seeks int, stream int64) error {
	work, err := os.MkdirTemp(dir, "ddc-netbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	holder, res, err := rawHolder(filepath.Join(work, "holder"), size)
	if err != nil {
		return err
	}
	defer holder.Close()
	gb := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e9 }
	var rows []result

	// 1. get vs raw stream, interleaved pairs on a new getter each time (it
	// keeps what it fetches); the first pair warms up. Each pair also
	// times the raw stream landed on the getter's disk as the store writes,
	// the floor of any get that keeps what it fetches.
	var rawT, landT, getT, ratios, landRatios []time.Duration
	for i := range runs + 1 {
		getter, err := benchNode(filepath.Join(work, fmt.Sprintf("getter-%d", i)), holder)
		if err != nil {
			return err
		}
		u0 := usageNow()
		r, err := readRaw(getter.Host(), holder.ID(), size, io.Discard)
		u1 := usageNow()
		var l time.Duration
		if err == nil {
			l, err = readRawToDisk(getter.Host(), holder.ID(), size, filepath.Join(work, "landed"))
		}
		ul := usageNow()
		if err == nil {
			var g time.Duration
			stop := startTrace(i == runs)
			g, err = getAll(getter, res.Root, size)
			stop()
			u2 := usageNow()
			fmt.Fprintf(os.Stderr, "raw: %s\nraw into disk: %s\nget: %s\n", u1.since(u0, r), ul.since(u1, l), u2.since(ul, g))
			if i > 0 && err == nil {
				rawT, landT, getT = append(rawT, r), append(landT, l), append(getT, g)
				ratios = append(ratios, time.Duration(float64(time.Second)*r.Seconds()/g.Seconds()))
				landRatios = append(landRatios, time.Duration(float64(time.Second)*l.Seconds()/g.Seconds()))
				fmt.Fprintf(os.Stderr, "pair %d: raw stream %.2f GB/s, raw into disk %.2f GB/s, get %.2f GB/s; ratio %.2f, %.2f of raw into disk\n",
					i, gb(r), gb(l), gb(g), r.Seconds()/g.Seconds(), l.Seconds()/g.Seconds())
			}
		}
		getter.Close()
		os.RemoveAll(filepath.Join(work, fmt.Sprintf("getter-%d", i)))
		if err != nil {
			return err
		}
	}
	ratio := med(ratios).Seconds()
	rows = append(rows, result{name: "get " + human(size) + " from 1 node (fetch, verify, keep)", value: fmt.Sprintf("%.2f GB/s", gb(med(getT))),
		baseline: fmt.Sprintf("raw libp2p stream %.2f GB/s", gb(med(rawT))), ratio: fmt.Sprintf("%.2f× (median of %d pairs)", ratio, len(ratios)),
		target: "≥ 0.6× (goal 0.8×)", ok: ratio >= 0.6})
	rows = append(rows, result{name: "the same get against the raw stream landed on disk", value: fmt.Sprintf("%.2f GB/s", gb(med(getT))),
		baseline: fmt.Sprintf("raw stream into O_DIRECT file + fdatasync %.2f GB/s", gb(med(landT))),
		ratio:    fmt.Sprintf("%.2f× (median of %d pairs)", med(landRatios).Seconds(), len(landRatios)), target: "(informative)", ok: true})

	// 2. remote seek: a node holding nothing reads 64 KiB at random
	// offsets, each in a chunk it has not read before.
	seeker, err := benchNode(filepath.Join(work, "seeker"), holder)
	if err != nil {
		return err
	}
	p50, p99, err := remoteSeeks(seeker, res.Root, size, seeks)
	seeker.Close()
	if err != nil {
		return err
	}
	chunkT := time.Duration(float64(time.Second) * float64(pieces.DefaultChunkSize) / (gb(med(rawT)) * 1e9))
	rows = append(rows, result{name: "remote seek: random 64 KiB, first byte, median", value: fmt.Sprintf("%.2f ms (p99 %.2f ms)", ms(p50), ms(p99)),
		baseline: fmt.Sprintf("1 MiB chunk at raw-stream speed %.2f ms", ms(chunkT)), ratio: fmt.Sprintf("%.1f× that", float64(p50)/float64(chunkT)),
		target: "< 10 ms", ok: p50 < 10*time.Millisecond})

	// 3. peak RSS of two daemons while one streams a large file from the
	// other through its API.
	if stream > 0 {
		row, err := streamRSS(work, stream)
		if err != nil {
			return err
		}
		rows = append(rows, row...)
	}
	return report(fmt.Sprintf("ddc network benchmark: two nodes on loopback, %s file, %d runs (median)", human(size), runs), rows)
}

// benchNode starts an in-process node on loopback TCP, bootstrapped off
// boot when given.
func benchNode(path string, boot *node.Node) (*node.Node, error) {
	cfg := p2ptest.NodeConfig()
	if boot != nil {
		cfg = p2ptest.NodeConfig(boot.Addrs()[0].String())
	}
	if _, err := repo.Init(path, cfg); err != nil {
		return nil, err
	}
	r, err := repo.Open(path, nil)
	if err != nil {
		return nil, err
	}
	n, err := node.Start(r, node.Options{})
	if err != nil || boot == nil {
		return n, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Connect(ctx, peer.AddrInfo{ID: boot.ID(), Addrs: boot.Host().Addrs()}); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// rawHolder starts an in-process node at path holding a random file of
// size bytes (seeded: the same bytes every run) and serving the raw stream.
func rawHolder(path string, size int64) (*node.Node, pieces.BuildResult, error) {
	holder, err := benchNode(path, nil)
	if err != nil {
		return nil, pieces.BuildResult{}, err
	}
	res, err := holder.Put(context.Background(), io.LimitReader(rand.NewChaCha8([32]byte{2}), size), pieces.DefaultBuildOptions())
	if err != nil {
		holder.Close()
		return nil, res, err
	}
	serveRaw(holder.Host(), size)
	return holder, res, nil
}

// serveRaw answers rawProto with size bytes from one buffer: the baseline
// is the transport alone, with no disk and no hashing.
func serveRaw(h host.Host, size int64) {
	buf := make([]byte, 1<<20)
	h.SetStreamHandler(rawProto, func(s network.Stream) {
		defer s.Close()
		for left := size; left > 0; left -= int64(len(buf)) {
			if _, err := s.Write(buf[:min(left, int64(len(buf)))]); err != nil {
				s.Reset()
				return
			}
		}
	})
}

// readRaw times reading the raw stream whole into w.
func readRaw(h host.Host, from peer.ID, size int64, w io.Writer) (time.Duration, error) {
	return readProto(h, from, rawProto, size, w)
}

// readProto times reading the stream of proto whole into w.
func readProto(h host.Host, from peer.ID, proto protocol.ID, size int64, w io.Writer) (time.Duration, error) {
	t0 := time.Now()
	s, err := h.NewStream(context.Background(), from, proto)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	n, err := io.CopyBuffer(struct{ io.Writer }{w}, s, make([]byte, 1<<20))
	if err == nil && n != size {
		err = fmt.Errorf("raw stream gave %d bytes, want %d", n, size)
	}
	return time.Since(t0), err
}

// rawFileProto is the raw stream read from a file.
const rawFileProto = "/ddc-bench/raw-file/1"

// serveRawFile answers rawFileProto with the file at path, read in 1 MiB
// reads as a holder reads what it stores: the floor of a get from a
// holder on the same machine, which must read its copy.
func serveRawFile(h host.Host, path string) {
	h.SetStreamHandler(rawFileProto, func(s network.Stream) {
		defer s.Close()
		f, err := os.Open(path)
		if err != nil {
			s.Reset()
			return
		}
		defer f.Close()
		if _, err := io.CopyBuffer(struct{ io.Writer }{s}, struct{ io.Reader }{f}, make([]byte, 1<<20)); err != nil {
			s.Reset()
		}
	})
}

// readRawFileToDisk times reading rawFileProto whole into a new file at
// path, landed as readRawToDisk lands it; the file is removed after.
func readRawFileToDisk(h host.Host, from peer.ID, size int64, path string) (time.Duration, error) {
	defer os.Remove(path)
	t0 := time.Now()
	l, err := newLanding(path)
	if err != nil {
		return 0, err
	}
	_, err = readProto(h, from, rawFileProto, size, l)
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	return time.Since(t0), err
}

// readRawToDisk times reading the raw stream whole into a new file at
// path, written as the store writes, until it is durable; the file is
// removed afterwards.
func readRawToDisk(h host.Host, from peer.ID, size int64, path string) (time.Duration, error) {
	return readRawToDiskAndFile(h, from, size, path, "")
}

// readRawToDiskAndFile is readRawToDisk that also writes the stream to a
// new file at out through the page cache, as a get writes its output
// (no sync), when out is not empty: the least a get that keeps its pieces
// and writes the file must do. Both files are removed afterwards.
func readRawToDiskAndFile(h host.Host, from peer.ID, size int64, path, out string) (time.Duration, error) {
	defer os.Remove(path)
	t0 := time.Now()
	l, err := newLanding(path)
	if err != nil {
		return 0, err
	}
	var w io.Writer = l
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			l.Close()
			return 0, err
		}
		defer os.Remove(out)
		defer f.Close()
		w = io.MultiWriter(l, f)
	}
	_, err = readRaw(h, from, size, w)
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	return time.Since(t0), err
}

// getAll reads the file whole through the node, as ddc get does, and
// waits for the pieces to be committed to its store.
func getAll(n *node.Node, root cid.Cid, size int64) (time.Duration, error) {
	t0 := time.Now()
	r, err := n.Open(context.Background(), root)
	if err != nil {
		return 0, err
	}
	got, err := r.WriteTo(struct{ io.Writer }{io.Discard})
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err == nil && got != size {
		err = fmt.Errorf("get gave %d bytes, want %d", got, size)
	}
	return time.Since(t0), err
}

func remoteSeeks(n *node.Node, root cid.Cid, size int64, count int) (p50, p99 time.Duration, err error) {
	r, err := n.Open(context.Background(), root)
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	chunks := int(size / pieces.DefaultChunkSize)
	count = min(count, chunks)
	order := rand.New(rand.NewPCG(9, 9)).Perm(chunks)[:count]
	offs := make([]int64, count)
	for i, c := range order {
		offs[i] = min(int64(c)*pieces.DefaultChunkSize+int64(pieces.DefaultInline)+1000, size-64<<10)
	}
	return timeReads(r, offs)
}

// streamRSS runs two ddc daemons, puts stream bytes on the first and cats
// them through the second, and reports each daemon's peak RSS.
func streamRSS(work string, stream int64) ([]result, error) {
	bin := filepath.Join(work, "ddc")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/ddc").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build ddc: %v\n%s", err, out)
	}
	holder, err := startDaemon(bin, filepath.Join(work, "d1"))
	if err != nil {
		return nil, err
	}
	defer holder.stop()
	getter, err := startDaemon(bin, filepath.Join(work, "d2"), "--bootstrap", holder.addr)
	if err != nil {
		return nil, err
	}
	defer getter.stop()
	put := exec.Command(bin, "--repo", holder.repo, "put", "-")
	put.Stdin = io.LimitReader(rand.NewChaCha8([32]byte{3}), stream)
	out, err := put.Output()
	if err != nil {
		return nil, fmt.Errorf("put %s: %w", human(stream), err)
	}
	id := strings.TrimSpace(string(out))
	d, _, err := catToPipe(bin, getter.repo, id, stream)
	if err != nil {
		return nil, err
	}
	const mib = 1 << 20
	var rows []result
	for _, x := range []struct {
		what string
		pid  int
	}{{"serving", holder.pid}, {"fetching", getter.pid}} {
		rss, err := peakRSS(x.pid)
		if err != nil {
			return nil, err
		}
		rows = append(rows, result{name: fmt.Sprintf("peak RSS of the %s daemon, %s streamed", x.what, human(stream)), value: fmt.Sprintf("%d MiB", rss/mib),
			baseline: fmt.Sprintf("stream at %.2f GB/s", float64(stream)/d.Seconds()/1e9), ratio: "-", target: "< 200 MiB", ok: rss < 200*mib})
	}
	return rows, nil
}

type benchDaemon struct {
	cmd        *exec.Cmd
	repo, addr string
	gateway    string // host:port
	pid        int
}

// startDaemon runs 'ddc node run' on loopback with the README's defaults
// but for free ports and no mDNS (it would join unrelated nodes).
func startDaemon(bin, path string, args ...string) (*benchDaemon, error) {
	return startDaemonCmd(exec.Command(bin, append([]string{"--repo", path, "node", "run",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1",
		"--api", "127.0.0.1:0", "--gateway", "127.0.0.1:0", "--no-mdns", "--log-level", "warn"}, args...)...), path)
}

// startDaemonCmd starts the node command cmd on the repo at path and waits
// for it to be ready.
func startDaemonCmd(cmd *exec.Cmd, path string) (*benchDaemon, error) {
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &benchDaemon{cmd: cmd, repo: path, pid: cmd.Process.Pid}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var st repo.State
		if b, err := os.ReadFile(filepath.Join(path, "node.json")); err == nil && json.Unmarshal(b, &st) == nil && st.PID == d.pid {
			d.addr, d.gateway = st.Addrs[0], st.Gateway
			return d, nil
		}
		time.Sleep(20 * time.Millisecond) // polling for the file the node writes when ready
	}
	d.stop()
	return nil, fmt.Errorf("daemon on %s not ready within 30 s", path)
}

func (d *benchDaemon) stop() {
	d.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
}

// peakRSS reads a running process's high-water resident set (VmHWM).
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// usage is what this process has used so far: CPU (user and system),
// page faults and heap allocation.
type usage struct {
	cpu    time.Duration
	faults int64
	alloc  uint64
}

func usageNow() usage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return usage{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), faults: ru.Minflt + ru.Majflt, alloc: ms.TotalAlloc}
}

// since describes what was used from u0 to u over a step that took d.
func (u usage) since(u0 usage, d time.Duration) string {
	return fmt.Sprintf("cpu %.0f%% of %d cores, %d page faults, %d MiB allocated",
		100*(u.cpu-u0.cpu).Seconds()/d.Seconds()/float64(runtime.NumCPU()), runtime.NumCPU(), u.faults-u0.faults, (u.alloc-u0.alloc)>>20)
}

// startTrace starts the execution trace and the CPU profile asked for, when
// on; the function it returns stops them.
func startTrace(on bool) func() {
	var stops []func()
	if on && traceFile != "" {
		if f, err := os.Create(traceFile); err != nil || trace.Start(f) != nil {
			fmt.Fprintln(os.Stderr, "bench: cannot trace to", traceFile)
		} else {
			stops = append(stops, func() { trace.Stop(); f.Close() })
		}
	}
	if on && getProfile != "" {
		if f, err := os.Create(getProfile); err != nil || pprof.StartCPUProfile(f) != nil {
			fmt.Fprintln(os.Stderr, "bench: cannot profile to", getProfile)
		} else {
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		}
	}
	if on && memProfile != "" {
		stops = append(stops, func() {
			f, err := os.Create(memProfile)
			if err == nil {
				err = errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench: cannot write allocations:", err)
			}
		})
	}
	return func() {
		for _, stop := range stops {
			stop()
		}
	}
}
