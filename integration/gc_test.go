package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
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
	b.ok(nil, "get", ids[2], "-o", filepath.Join(t.TempDir(), "cached"))
	if g := b.gc(); g.Removed == 0 || g.Freed < 64<<20 {
		t.Fatalf("GC on a node that got a file without --pin removed %+v; want the file, as cache", g)
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
