package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// duBytes is what the repo's block files take on disk, as du counts it.
func duBytes(t *testing.T, r *repo) int64 {
	t.Helper()
	var n int64
	ents, err := os.ReadDir(filepath.Join(r.path, "store", "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Sys().(*syscall.Stat_t).Blocks * 512
	}
	return n
}

type gcReply struct {
	Live    int    `json:"live_pieces"`
	Removed int    `json:"removed_pieces"`
	Freed   uint64 `json:"freed_bytes"`
}

func (r *repo) gc() gcReply {
	r.t.Helper()
	var g gcReply
	if err := json.Unmarshal([]byte(r.ok(nil, "repo", "gc", "--json")), &g); err != nil {
		r.t.Fatal(err)
	}
	return g
}

// TestPinRmAndGCGiveSpaceBack: three 64 MiB files put through a node; two
// unpinned and collected give their space back on disk, the third still
// reads the same, and the two are gone: offline, cat says so, naming the
// CID. A get is cache unless --pin: a second node's GC drops what it got,
// and keeps what it got pinned.
func TestPinRmAndGCGiveSpaceBack(t *testing.T) {
	a := startDaemon(t, newDaemonRepo(t))
	var files, ids []string
	for i := range 3 {
		files = append(files, randomFile(t, uint64(700+i), 64<<20))
		ids = append(ids, a.put(files[i]))
	}
	before := duBytes(t, a.repo)
	for _, c := range ids[:2] {
		if out := a.ok(nil, "pin", "rm", c); !strings.Contains(out, "unpinned "+c) {
			t.Fatalf("pin rm %s said %q", c, out)
		}
	}
	if code, _, errs := a.run(nil, "pin", "rm", ids[0]); code == 0 || !strings.Contains(errs, ids[0]) {
		t.Fatalf("pin rm of a file not pinned: exit %d, %q; want a failure naming it", code, errs)
	}
	var pins []struct{ CID string }
	if err := json.Unmarshal([]byte(a.ok(nil, "pin", "ls", "--json")), &pins); err != nil || len(pins) != 1 || pins[0].CID != ids[2] {
		t.Fatalf("pin ls after two pin rm: %+v, %v; want %s alone", pins, err, ids[2])
	}
	g := a.gc()
	after := duBytes(t, a.repo)
	t.Logf("gc removed %d pieces (%d bytes); du %d -> %d", g.Removed, g.Freed, before, after)
	if before-after < 120<<20 {
		t.Fatalf("du of the blocks went from %d to %d after removing two 64 MiB files: want at least 120 MiB back", before, after)
	}
	got := filepath.Join(t.TempDir(), "third")
	a.ok(nil, "get", ids[2], "-o", got)
	if !sameFile(t, files[2], got) {
		t.Fatal("the pinned file reads differently after GC")
	}

	b := startDaemon(t, newDaemonRepo(t), "--bootstrap", a.tcpAddr())
	b.ok(nil, "get", ids[2], "-o", filepath.Join(t.TempDir(), "copied"), "--copy")
	if g := b.gc(); g.Removed == 0 || g.Freed < 64<<20 {
		t.Fatalf("GC on a node that got a file with --copy, without --pin, removed %+v; want the file, as cache", g)
	}
	// Kept in place, the cache is index entries: GC drops them, and the
	// file stays as it was.
	inPlace := filepath.Join(t.TempDir(), "in-place")
	b.ok(nil, "get", ids[2], "-o", inPlace)
	if g := b.gc(); g.Removed != 65 || g.Freed > 1<<20 {
		t.Fatalf("GC on a node that got a file in place removed %+v; want its 65 pieces, freeing no more than its descriptor", g)
	}
	if !sameFile(t, files[2], inPlace) || b.usage().InPlacePieces != 0 {
		t.Fatal("GC touched the in-place output, or left its entries")
	}
	b.ok(nil, "get", "--pin", ids[2], "-o", filepath.Join(t.TempDir(), "pinned"))
	if g := b.gc(); g.Removed != 0 {
		t.Fatalf("GC removed %d pieces of a file got with --pin", g.Removed)
	}

	a.stop(t)
	for _, c := range ids[:2] {
		code, _, errs := a.run(nil, "cat", c)
		if code != 3 || !strings.Contains(errs, c) || !strings.Contains(errs, "not found") {
			t.Fatalf("offline cat of collected %s: exit %d, %q; want not found (3) naming it", c, code, errs)
		}
	}
	if out := a.ok(nil, "repo", "verify"); !strings.Contains(out, " 0 bad") {
		t.Fatalf("repo verify after GC: %q", out)
	}
	a.ok(nil, "cat", ids[2]) // offline, still whole
}

// TestKilledGCLeavesRootsWhole kills an offline 'ddc repo gc' with SIGKILL
// at moments spread over its run (marking, sweeping, punching) on a repo
// of tens of thousands of unpinned pieces: each time the pinned files
// verify, and the GC after the last kill leaves no dead space behind.
func TestKilledGCLeavesRootsWhole(t *testing.T) {
	r := newRepo(t)
	keep := randomFile(t, 800, 8<<20)
	kept := r.put(keep)
	keptSmall := r.put(randomFile(t, 801, 2<<20), "--chunk-size", "1KiB")
	for i := range 4 {
		c := r.put(randomFile(t, uint64(810+i), 8<<20), "--chunk-size", "1KiB")
		r.ok(nil, "pin", "rm", c)
	}
	full := r.usage()
	for i, after := range []time.Duration{2 * time.Millisecond, 5 * time.Millisecond, 15 * time.Millisecond, 30 * time.Millisecond, 60 * time.Millisecond, 120 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond} {
		cmd := r.command(context.Background(), "repo", "gc")
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		kill := time.AfterFunc(after, func() { cmd.Process.Signal(syscall.SIGKILL) })
		err := cmd.Wait()
		kill.Stop()
		u := r.usage()
		t.Logf("kill %d after %v: %v; %d of %d pieces left", i, after, err, u.Pieces, full.Pieces)
		if out := r.ok(nil, "repo", "verify"); !strings.Contains(out, " 0 bad") {
			t.Fatalf("repo verify after a GC killed at %v: %q", after, out)
		}
		for _, c := range []string{kept, keptSmall} {
			r.ok(nil, "cat", c)
		}
	}
	g := r.gc()
	u := r.usage()
	got := filepath.Join(t.TempDir(), "kept")
	r.ok(nil, "get", kept, "-o", got)
	if !sameFile(t, keep, got) {
		t.Fatal("the pinned file reads differently after the killed GCs")
	}
	du := duBytes(t, r)
	t.Logf("last gc removed %d pieces; live %d bytes, du %d", g.Removed, u.PieceBytes, du)
	// Pieces of 1 KiB free only whole 4 KiB blocks: what a hole leaves
	// in part of one stays. The 10 MiB live take 10 MiB.
	if du > int64(u.PieceBytes)+4<<20 {
		t.Fatalf("du %d for %d live bytes after GC: the space of the killed GCs' drops did not come back", du, u.PieceBytes)
	}
}

// TestQuotaKeepsTheStoreBounded: a node with --storage-max 200MB gets 1
// GiB of another node's files: what it takes on disk (as du counts it)
// stays within the quota plus 64 MiB, least recently used cache goes
// first, it keeps serving what it holds, and its pinned files stay. A
// pinned put over the quota fails, naming it, and loses nothing.
func TestQuotaKeepsTheStoreBounded(t *testing.T) {
	const quota = 200 << 20
	a := startDaemon(t, newDaemonRepo(t))
	b := startDaemon(t, newDaemonRepo(t), "--storage-max", "200MB", "--bootstrap", a.tcpAddr())
	var pinned []string
	for i := range 2 {
		pinned = append(pinned, b.put(randomFile(t, uint64(960+i), 20<<20)))
	}
	var ids []string
	for i := range 8 {
		src := randomFile(t, uint64(970+i), 128<<20)
		ids = append(ids, a.put(src))
		os.Remove(src) // the disk holds a's copy; the get checks every piece against its CID
	}
	for i, c := range ids {
		b.ok(nil, "get", c, "-o", "/dev/null")
		if du := duBytes(t, b.repo); du > quota+64<<20 {
			t.Fatalf("after getting %d of 8 files of 128 MiB: du %d, over the quota %d + 64 MiB", i+1, du, quota)
		}
	}
	t.Logf("du after 1 GiB through a 200 MB quota: %d", duBytes(t, b.repo))
	last := ids[len(ids)-1]
	a.stop(t) // what b serves now, it holds: the most recent cache stayed
	resp, err := http.Get(b.gateway() + "/ddc/file/" + last)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || n != 128<<20 {
		t.Fatalf("the node under its quota serves the last file it got: %d, %d bytes", resp.StatusCode, n)
	}
	if v := metric(t, b.metrics(t), "ddc_quota_evictions_total"); v < 5 {
		t.Fatalf("%v files evicted for 1 GiB through a 200 MB quota", v)
	}

	evictions := metric(t, b.metrics(t), "ddc_quota_evictions_total")
	big := randomFile(t, 990, 256<<20)
	code, _, errs := b.run(nil, "put", big)
	if code != 7 || !strings.Contains(errs, "storage_max") {
		t.Fatalf("a pinned put of 256 MiB under a 200 MB quota: exit %d, %q; want 7 naming storage_max", code, errs)
	}
	if v := metric(t, b.metrics(t), "ddc_quota_evictions_total"); v != evictions {
		t.Fatalf("a put that cannot fit evicted %v files before it failed; want it refused at once", v-evictions)
	}
	// One that fits once cache goes: the cache makes room for it.
	mid := randomFile(t, 991, 120<<20)
	pinned = append(pinned, b.put(mid))
	if v := metric(t, b.metrics(t), "ddc_quota_evictions_total"); v <= evictions {
		t.Fatal("a pinned put of 120 MiB beside 168 MiB of cache under a 200 MB quota evicted nothing")
	}
	for _, c := range pinned {
		b.ok(nil, "cat", c)
	}
	if out := b.ok(nil, "repo", "verify"); !strings.Contains(out, " 0 bad") {
		t.Fatalf("repo verify after the quota's evictions: %q", out)
	}
	if du := duBytes(t, b.repo); du > quota+64<<20 {
		t.Fatalf("du %d after the refused put", du)
	}
}

// TestGCBesideTheNode: puts, gets, gateway range reads and pin changes go
// on, each in a loop, through a node while 'ddc repo gc' runs on it again
// and again. None of them fails, every pinned file verifies at the end,
// and the longest put beside GC is logged beside the longest with none.
func TestGCBesideTheNode(t *testing.T) {
	a := startDaemon(t, newDaemonRepo(t))
	b := startDaemon(t, newDaemonRepo(t), "--bootstrap", a.tcpAddr())
	var remote []string // a's files, which b gets as cache
	for i := range 3 {
		remote = append(remote, a.put(randomFile(t, uint64(1100+i), 4<<20)))
	}
	type file struct{ id, src string }
	var mu sync.Mutex
	var pinned []file
	var seq atomic.Uint64
	putOne := func() (time.Duration, error) {
		src := randomFile(t, 1200+seq.Add(1), 1<<20+int64(seq.Load()%7)<<10)
		t0 := time.Now()
		code, out, errs := b.run(nil, "put", src)
		if code != 0 {
			return 0, fmt.Errorf("put: exit %d: %s", code, errs)
		}
		mu.Lock()
		pinned = append(pinned, file{strings.TrimSpace(out), src})
		mu.Unlock()
		return time.Since(t0), nil
	}
	var quiet time.Duration
	for range 5 {
		d, err := putOne()
		if err != nil {
			t.Fatal(err)
		}
		quiet = max(quiet, d)
	}

	const runs = 30
	stop := make(chan struct{})
	var rounds sync.Map // loop name -> *atomic.Int64 of rounds done
	errs := make(chan error, 8)
	var busy atomic.Int64 // the longest put beside GC, ns
	var wg sync.WaitGroup
	loop := func(what string, f func(i int) error) {
		n := new(atomic.Int64)
		rounds.Store(what, n)
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := f(i); err != nil {
					errs <- fmt.Errorf("%s: %w", what, err)
					return
				}
				n.Add(1)
			}
		})
	}
	loop("put", func(int) error {
		d, err := putOne()
		for old := busy.Load(); int64(d) > old && !busy.CompareAndSwap(old, int64(d)); old = busy.Load() {
		}
		return err
	})
	loop("get", func(i int) error {
		if code, _, e := b.run(nil, "get", remote[i%len(remote)], "-o", "/dev/null"); code != 0 {
			return fmt.Errorf("exit %d: %s", code, e)
		}
		return nil
	})
	loop("gateway range", func(i int) error {
		mu.Lock()
		f := pinned[i%len(pinned)]
		mu.Unlock()
		want, err := os.ReadFile(f.src)
		if err != nil {
			return err
		}
		from := (i * 4099) % (len(want) - 70000)
		req, _ := http.NewRequest("GET", b.gateway()+"/ddc/file/"+f.id, nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, from+65535))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, want[from:from+65536]) {
			return fmt.Errorf("range of %s: %d, %d bytes, %v", f.id, resp.StatusCode, len(got), err)
		}
		return nil
	})
	loop("pin add and rm", func(i int) error {
		c := remote[(i+1)%len(remote)] // a's: pin add fetches what GC took
		if code, _, e := b.run(nil, "pin", "add", c); code != 0 {
			return fmt.Errorf("pin add: exit %d: %s", code, e)
		}
		if code, _, e := b.run(nil, "cat", c, "--offset", "1048576", "--length", "65536"); code != 0 {
			return fmt.Errorf("cat of a pinned file: exit %d: %s", code, e)
		}
		if code, _, e := b.run(nil, "pin", "rm", c); code != 0 {
			return fmt.Errorf("pin rm: exit %d: %s", code, e)
		}
		return nil
	})
	for range runs {
		b.gc()
		select {
		case err := <-errs:
			close(stop)
			wg.Wait()
			t.Fatal(err)
		default:
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	rounds.Range(func(k, v any) bool {
		if n := v.(*atomic.Int64).Load(); n < 3 {
			t.Errorf("the %s loop ran %d rounds beside %d GCs; want a few", k, n, runs)
		}
		return true
	})
	b.gc()
	for _, f := range pinned {
		got := filepath.Join(t.TempDir(), "check")
		b.ok(nil, "get", f.id, "-o", got)
		if !sameFile(t, f.src, got) {
			t.Fatalf("pinned %s reads differently after the GCs", f.id)
		}
	}
	if out := b.ok(nil, "repo", "verify"); !strings.Contains(out, " 0 bad") {
		t.Fatalf("repo verify: %q", out)
	}
	t.Logf("%d GC runs beside %d puts and the other loops; longest put %v beside GC, %v before it", runs+1, len(pinned), time.Duration(busy.Load()).Round(time.Millisecond), quiet.Round(time.Millisecond))
}
