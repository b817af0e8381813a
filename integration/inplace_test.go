package integration

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// getAlone has a fresh node that knows only from get id, and checks the
// bytes are want's.
func getAlone(t *testing.T, from *daemon, id, want string) {
	t.Helper()
	c := startDaemon(t, newDaemonRepo(t), "--bootstrap", from.tcpAddr())
	out := filepath.Join(t.TempDir(), "got")
	c.ok(nil, "get", id, "-o", out)
	if !sameFile(t, want, out) {
		t.Fatalf("a get from %s alone differs from the file put", from.path)
	}
	c.stop(t)
}

// TestGetInPlace: a get to a file through the daemon writes each byte
// once: the getter's block files hold the descriptors only, and its index
// points into the output. A third node then gets the file from the
// getter alone, byte-identical, and again after the getter restarts.
func TestGetInPlace(t *testing.T) {
	const size = 96 << 20
	a := startDaemon(t, newDaemonRepo(t))
	b := startDaemon(t, newDaemonRepo(t), "--bootstrap", a.tcpAddr())
	src := randomFile(t, 900, size)
	id := a.put(src)
	out := filepath.Join(t.TempDir(), "out.bin")
	b.ok(nil, "get", id, "-o", out)
	if !sameFile(t, src, out) {
		t.Fatal("the in-place get's output differs from the file put")
	}
	st := b.usage()
	if st.InPlacePieces != 96 || st.InPlaceBytes != size-4096 || len(st.InPlace) != 1 || st.InPlace[0].Path != out {
		t.Fatalf("getter's in-place pieces: %+v; want 96 in %s", st, out)
	}
	if st.Allocated > 1<<20 {
		t.Fatalf("getter's block files take %d bytes for a file kept in place", st.Allocated)
	}
	if v := b.ok(nil, "repo", "verify"); !strings.Contains(v, "97 pieces checked, 0 bad") || !strings.Contains(v, "in place: 96 pieces") {
		t.Fatalf("repo verify: %s", v)
	}
	a.stop(t)
	getAlone(t, b, id, src)

	b.stop(t)
	b = startDaemon(t, b.repo)
	getAlone(t, b, id, src)

	// --copy keeps the node's own copy instead; stdout is always copied.
	c := startDaemon(t, newDaemonRepo(t), "--bootstrap", b.tcpAddr())
	c.ok(nil, "get", id, "-o", filepath.Join(t.TempDir(), "copied"), "--copy")
	if st := c.usage(); st.InPlacePieces != 0 || st.Allocated < size {
		t.Fatalf("get --copy: %+v", st)
	}
}

// TestInPlaceChangedFilesFailOver: the getter's output files are edited,
// truncated and deleted. A fresh node's get of each from the getter alone
// fails with an error naming a CID, never with wrong bytes (no output is
// left), and the getter's index lists the pieces no more once a verify
// has read those the gets did not.
func TestInPlaceChangedFilesFailOver(t *testing.T) {
	const size = 8 << 20
	a := startDaemon(t, newDaemonRepo(t))
	b := startDaemon(t, newDaemonRepo(t), "--bootstrap", a.tcpAddr())
	dir := t.TempDir()
	var ids, outs []string
	for i := range 3 {
		src := randomFile(t, uint64(910+i), size)
		ids = append(ids, a.put(src))
		outs = append(outs, filepath.Join(dir, []string{"edited", "truncated", "deleted"}[i]))
		b.ok(nil, "get", ids[i], "-o", outs[i])
	}
	if st := b.usage(); st.InPlacePieces != 3*8 {
		t.Fatalf("in place before: %+v", st)
	}
	a.stop(t)

	f, err := os.OpenFile(outs[0], os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0x5a}, 3<<20+77); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Truncate(outs[1], size/2); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(outs[2]); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			c := startDaemon(t, newDaemonRepo(t), "--bootstrap", b.tcpAddr())
			got := filepath.Join(t.TempDir(), "got")
			code, _, errs := c.run(nil, "get", id, "-o", got)
			t.Logf("%s: exit %d: %s", filepath.Base(outs[i]), code, errs)
			if code == 0 || !strings.Contains(errs, id) && !strings.Contains(errs, "bafk") {
				t.Errorf("get of the %s file from the getter alone: exit %d, %q; want a failure naming a CID", filepath.Base(outs[i]), code, errs)
			}
			if _, err := os.Stat(got); err == nil {
				t.Errorf("a failed get of the %s file left an output", filepath.Base(outs[i]))
			}
		})
	}
	wg.Wait()
	b.run(nil, "repo", "verify") // finds what the gets did not read, and drops it too
	st := b.usage()
	byPath := map[string]int{}
	for _, f := range st.InPlace {
		byPath[f.Path] = f.Pieces
	}
	if n := byPath[outs[0]]; n != 7 {
		t.Errorf("edited file: %d pieces in place, want 7 (the changed one dropped)", n)
	}
	if n := byPath[outs[1]]; n != 3 {
		t.Errorf("truncated file: %d pieces in place, want the 3 before the cut", n)
	}
	if _, ok := byPath[outs[2]]; ok {
		t.Errorf("deleted file still listed: %+v", st.InPlace)
	}
	if v := b.ok(nil, "repo", "verify"); !strings.Contains(v, " 0 bad") {
		t.Errorf("repo verify after the drops: %s", v)
	}
}

// TestKilledInPlaceGet: the getter is killed at random points of an
// in-place get (spread over the time one whole get takes) and restarted.
// repo verify is clean each time: every in-place entry points at whole,
// matching bytes, or there is none.
func TestKilledInPlaceGet(t *testing.T) {
	const size = 128 << 20
	a := startDaemon(t, newDaemonRepo(t))
	src := randomFile(t, 920, size)
	id := a.put(src)
	r := newDaemonRepo(t)
	rng := rand.New(rand.NewPCG(920, 1))
	out := filepath.Join(t.TempDir(), "out")
	var whole time.Duration
	killed := 0
	for i := range 6 {
		b := startDaemon(t, r, "--bootstrap", a.tcpAddr())
		cmd := b.command(t.Context(), "get", id, "-o", out)
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var after time.Duration
		if i > 0 { // the first get runs whole, to time it
			after = time.Duration(rng.Int64N(int64(whole)))
			time.AfterFunc(after, b.kill)
		}
		err := cmd.Wait()
		if i == 0 {
			whole = time.Since(t0)
			b.kill()
		}
		<-b.exited
		if err != nil {
			killed++
		}
		b = startDaemon(t, r, "--bootstrap", a.tcpAddr())
		v := b.ok(nil, "repo", "verify")
		if !strings.Contains(v, " 0 bad") {
			t.Fatalf("kill %d: repo verify: %s", i, v)
		}
		st := b.usage()
		t.Logf("kill %d after %s of %s: get: %v; %d pieces in place after", i, after, whole, err, st.InPlacePieces)
		if st.InPlacePieces > 0 && !sameFile(t, src, out) {
			t.Fatalf("kill %d: in-place pieces point into an output that is not the file", i)
		}
		b.ok(nil, "repo", "gc") // the next round fetches again
		os.Remove(out)
		b.stop(t)
	}
	if killed == 0 {
		t.Fatal("no get was cut short by a kill")
	}
}

// TestPutInPlace: put --in-place indexes the file where it lies, adding
// about nothing to the block files, and another node gets it
// byte-identical from that holder.
func TestPutInPlace(t *testing.T) {
	const size = 96 << 20
	a := startDaemon(t, newDaemonRepo(t))
	before := a.usage()
	src := randomFile(t, 930, size)
	id := a.put(src, "--in-place")
	st := a.usage()
	if st.InPlaceBytes != size-4096 || st.Allocated-before.Allocated > 1<<20 {
		t.Fatalf("put --in-place: %+v (before %+v)", st, before)
	}
	getAlone(t, a, id, src)

	// Offline, the same.
	a.stop(t)
	src2 := randomFile(t, 931, 4<<20)
	a.put(src2, "--in-place")
	if st := a.usage(); st.InPlaceBytes != size-4096+4<<20-4096 {
		t.Fatalf("offline put --in-place: %+v", st)
	}
}

// TestInPlaceGetKeepsPrivatePrivate: an in-place get of a private file by
// its owner's node, with and without naming the bucket, leaves the
// file's pieces private there: its gateway refuses a chunk to a client
// without a grant. A getter that fetched them keeps them private too.
func TestInPlaceGetKeepsPrivatePrivate(t *testing.T) {
	owner := startDaemon(t, newDaemonRepo(t))
	s := putSecret(t, owner)
	owner.ok(nil, "get", s.root, "-o", filepath.Join(t.TempDir(), "plain"))
	owner.ok(nil, "get", "-b", s.bucket, s.root, "-o", filepath.Join(t.TempDir(), "in-bucket"))
	refused := func(d *daemon) {
		t.Helper()
		resp, err := http.Get(d.gateway() + "/ipfs/" + s.chunk + "?format=raw")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || bytes.Contains(body, []byte(secretMarker)) {
			t.Fatalf("a chunk of the private file from %s's gateway without a grant: %d, %d bytes", d.path, resp.StatusCode, len(body))
		}
	}
	refused(owner)

	token := strings.TrimSpace(owner.ok(nil, "bucket", "grant", s.bucket, "--bearer", "--ops", "get"))
	g := startDaemon(t, newDaemonRepo(t), "--bootstrap", owner.tcpAddr())
	waitFor(t, "the getter to find the bucket's record", 30*time.Second, func() bool {
		_, err := g.bucket(s.bucket)
		return err == nil
	})
	g.ok(nil, "get", "-b", s.bucket, "--token", token, s.root, "-o", filepath.Join(t.TempDir(), "granted"))
	if st := g.usage(); st.InPlacePieces == 0 {
		t.Fatalf("the granted get kept nothing in place: %+v", st)
	}
	refused(g)
}
