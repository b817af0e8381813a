package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ddc-project/ddc/internal/smallfs"
)

// TestFullDiskThroughCLI runs the README's commands on a repo in a 64 MiB
// filesystem: a put that does not fit fails with exit 5 and gives its
// space back, so the next put succeeds on the same running node; with the
// disk full to the last byte, puts fail naming their file's CID while ls,
// cat and repo verify go on, offline and through a node started on the
// full disk; once space is freed, puts succeed without a restart.
func TestFullDiskThroughCLI(t *testing.T) {
	fs := smallfs.Mount(t, 64<<20)
	r := &repo{t: t, path: filepath.Join(fs, "repo")}
	r.ok(nil, "init")
	small := []string{randomFile(t, 61, 1000), randomFile(t, 62, 300_000), randomFile(t, 63, 400_000)}
	var ids []string
	for _, f := range small {
		ids = append(ids, newRepo(t).put(f)) // the CIDs, from a repo with room
	}
	if got := r.put(small[0]); got != ids[0] {
		t.Fatalf("put %s, want %s", got, ids[0])
	}

	d := startDaemon(t, r)
	code, _, errs := d.run(nil, "put", randomFile(t, 64, 100<<20))
	if code != 5 || !strings.Contains(errs, "no space left") || !strings.Contains(errs, "bafk") {
		t.Fatalf("put of 100 MiB into 64 MiB: exit %d: %s", code, errs)
	}
	if got := d.put(small[1]); got != ids[1] {
		t.Fatalf("put after a put that did not fit: %s, want %s", got, ids[1])
	}

	filler := smallfs.Fill(t, fs, 0)
	code, _, errs = d.run(nil, "put", small[2])
	if code != 5 || !strings.Contains(errs, ids[2]) || strings.Contains(errs, ids[1]) {
		t.Fatalf("put on a full disk: exit %d, want 5 naming %s and no other file: %s", code, ids[2], errs)
	}
	reads := func(r *repo, how string) {
		t.Helper()
		ls := r.ok(nil, "ls")
		if !strings.Contains(ls, ids[0]) || !strings.Contains(ls, ids[1]) {
			t.Fatalf("ls %s on a full disk: %s", how, ls)
		}
		out := filepath.Join(t.TempDir(), "got")
		r.ok(nil, "get", ids[1], "-o", out)
		if !sameFile(t, small[1], out) {
			t.Fatalf("get %s on a full disk: other bytes", how)
		}
		r.ok(nil, "repo", "verify")
	}
	reads(d.repo, "through the node")
	d.stop(t)
	reads(r, "offline")

	d = startDaemon(t, r)
	reads(d.repo, "through a node started on the full disk")
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if got := d.put(small[2]); got != ids[2] {
		t.Fatalf("put once space is back: %s, want %s", got, ids[2])
	}
}
