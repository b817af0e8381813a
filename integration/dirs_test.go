package integration

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// treeOf maps every path below dir to its size and a hash of its bytes
// ("dir" for folders).
func treeOf(t *testing.T, dir string) map[string]string {
	out := make(map[string]string)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			out[rel] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = fmt.Sprintf("%d:%x", len(b), sum(bytes.NewReader(b)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sourceTree copies this project's own source tree (without .git and
// build outputs) into a new folder.
func sourceTree(t *testing.T) string {
	dst := filepath.Join(t.TempDir(), "src")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bench-out") {
			return filepath.SkipDir
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() || strings.HasSuffix(p, ".test") || (d.Name() == "ddc" && !d.IsDir()) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// generatedTree writes n small files into nested folders, with empty
// folders among them.
func generatedTree(t *testing.T, n int) string {
	dst := filepath.Join(t.TempDir(), "gen")
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range n {
		dir := filepath.Join(dst, fmt.Sprintf("a%02d", i%17), fmt.Sprintf("b%03d", i%211))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, rng.IntN(6000))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d.bin", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []string{"empty", "a00/empty/deeper"} {
		if err := os.MkdirAll(filepath.Join(dst, e), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func sameTree(t *testing.T, a, b string) {
	t.Helper()
	ta, tb := treeOf(t, a), treeOf(t, b)
	if len(ta) != len(tb) {
		t.Fatalf("%s has %d paths, %s has %d", a, len(ta), b, len(tb))
	}
	for p, v := range ta {
		if tb[p] != v {
			t.Fatalf("%s differs: %q vs %q", p, v, tb[p])
		}
	}
}

// TestDirectories: put -r of this project's source tree and of a
// generated tree of 10,000 files on one node; get -o on another gives the
// same names, sizes and bytes; ls and the gateway's listing agree.
func TestDirectories(t *testing.T) {
	n1 := startDaemon(t, newDaemonRepo(t))
	n2 := startDaemon(t, newDaemonRepo(t), "--bootstrap", n1.tcpAddr())
	var last, lastDir string
	for _, tc := range []struct {
		name string
		dir  string
	}{{"source", sourceTree(t)}, {"generated", generatedTree(t, 10_000)}} {
		t.Run(tc.name, func(t *testing.T) {
			root := strings.TrimSpace(n1.ok(nil, "put", "-r", tc.dir))
			last, lastDir = root, tc.dir
			if again := strings.TrimSpace(n1.ok(nil, "put", "-r", tc.dir)); again != root {
				t.Fatalf("the same tree put twice: %s, then %s", root, again)
			}
			out := filepath.Join(t.TempDir(), "out")
			n2.ok(nil, "get", root, "-o", out)
			sameTree(t, tc.dir, out)

			// ls and the gateway list the same entries.
			sub := "a03/b020"
			if tc.name == "source" {
				sub = "pieces"
			}
			var ls, gw struct {
				CID     string `json:"cid"`
				Entries []struct {
					Name, CID string
					Size      uint64
				} `json:"entries"`
			}
			if err := json.Unmarshal([]byte(n2.ok(nil, "ls", "--json", root+"/"+sub)), &ls); err != nil {
				t.Fatal(err)
			}
			resp, err := http.Get(n1.gateway() + "/ddc/file/" + root + "/" + sub + "/?format=json")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if err := json.NewDecoder(resp.Body).Decode(&gw); err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadDir(filepath.Join(tc.dir, sub))
			if len(ls.Entries) != len(want) || len(gw.Entries) != len(want) || ls.CID != gw.CID {
				t.Fatalf("ls lists %d entries, the gateway %d, the folder has %d", len(ls.Entries), len(gw.Entries), len(want))
			}
			for i := range want {
				if ls.Entries[i] != gw.Entries[i] || ls.Entries[i].Name != want[i].Name() {
					t.Fatalf("entry %d: ls %+v, gateway %+v, folder %s", i, ls.Entries[i], gw.Entries[i], want[i].Name())
				}
			}
			// A file by its path through the gateway is its bytes.
			f := filepath.Join(sub, want[len(want)-1].Name())
			if !want[len(want)-1].IsDir() {
				body := httpGet(t, n2.gateway()+"/ddc/file/"+root+"/"+filepath.ToSlash(f))
				if b, _ := os.ReadFile(filepath.Join(tc.dir, f)); !bytes.Equal(body, b) {
					t.Fatalf("the gateway's %s differs", f)
				}
			}
		})
	}

	// pin add of a directory fetches its whole tree: GC keeps it, and it
	// reads whole once the uploader is gone.
	n3 := startDaemon(t, newDaemonRepo(t), "--bootstrap", n1.tcpAddr())
	n3.ok(nil, "pin", "add", last)
	n3.ok(nil, "repo", "gc")
	n1.stop(t)
	out := filepath.Join(t.TempDir(), "pinned")
	n3.ok(nil, "get", last, "-o", out)
	sameTree(t, lastDir, out)
}

func httpGet(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return b
}

// TestUnsafeNames: a tree naming a path outside itself, or holding a
// link, is refused on put, by the CLI and by the API, and nothing lands
// outside the target on get.
func TestUnsafeNames(t *testing.T) {
	n := startDaemon(t, newDaemonRepo(t))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ok"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := n.run(nil, "put", "-r", dir); code == 0 || !strings.Contains(stderr, "link") {
		t.Fatalf("put -r of a folder with a symlink: exit %d, %q", code, stderr)
	}

	// A folder whose name URLs escape redirects to itself with a slash,
	// escaped as it came, its query kept.
	os.Remove(filepath.Join(dir, "link"))
	if err := os.Mkdir(filepath.Join(dir, "a b#c"), 0o755); err != nil {
		t.Fatal(err)
	}
	root := strings.TrimSpace(n.ok(nil, "put", "-r", dir))
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	folder := "/ddc/file/" + root + "/a%20b%23c"
	resp, err := noFollow.Get(n.gateway() + folder + "?format=json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusMovedPermanently || loc != folder+"/?format=json" {
		t.Fatalf("GET %s: %s to %q, want a redirect to %s/?format=json", folder, resp.Status, loc, folder)
	}
	httpGet(t, n.gateway()+folder+"/?format=json")

	for _, name := range []string{"../x", "/etc/x", "a/../../x"} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: 1, Mode: 0o644})
		tw.Write([]byte("x"))
		tw.Close()
		resp, err := http.Post("http://"+n.state.API+"/api/v1/put/tree", "application/x-tar", &buf)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "unsafe entry name") {
			t.Fatalf("put of %q: %s %s", name, resp.Status, msg)
		}
	}
}

// TestCompose: a file of three ranges of two files reads back byte-exact,
// seeks through the gateway, on the node and from another, and stores
// no data piece.
func TestCompose(t *testing.T) {
	n1 := startDaemon(t, newDaemonRepo(t))
	n2 := startDaemon(t, newDaemonRepo(t), "--bootstrap", n1.tcpAddr())
	a, b := randomFile(t, 41, 3<<20+777), randomFile(t, 42, 2<<20+5)
	ca, cb := n1.put(a), n1.put(b)
	ba, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	stat := func() (st struct{ Pieces, PieceBytes uint64 }) {
		var raw struct {
			Pieces     uint64 `json:"pieces"`
			PieceBytes uint64 `json:"piece_bytes"`
		}
		if err := json.Unmarshal([]byte(n1.ok(nil, "repo", "stat", "--json")), &raw); err != nil {
			t.Fatal(err)
		}
		st.Pieces, st.PieceBytes = raw.Pieces, raw.PieceBytes
		return st
	}
	before := stat()
	c := strings.TrimSpace(n1.ok(nil, "compose", ca+":100+1500000", cb+":1048570+20", ca+":2500000"))
	want := append(append(append([]byte(nil), ba[100:1_500_100]...), bb[1_048_570:1_048_590]...), ba[2_500_000:]...)
	after := stat()
	if grew := after.PieceBytes - before.PieceBytes; after.Pieces-before.Pieces > 2 || grew > 64<<10 {
		t.Fatalf("compose stored %d pieces, %d bytes", after.Pieces-before.Pieces, grew)
	}
	for _, n := range []*daemon{n1, n2} {
		out := filepath.Join(t.TempDir(), "composed")
		n.ok(nil, "get", c, "-o", out)
		if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
			t.Fatalf("composed file read on %s differs", n.path)
		}
		for _, rg := range [][2]int{{0, 10}, {1_499_990, 40}, {1_500_019, 3}, {len(want) - 5, 5}} {
			req, _ := http.NewRequest(http.MethodGet, n.gateway()+"/ddc/file/"+c, nil)
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", rg[0], rg[0]+rg[1]-1))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, want[rg[0]:rg[0]+rg[1]]) {
				t.Fatalf("range %v on %s: %s", rg, n.path, resp.Status)
			}
		}
	}
	// GC keeps what the composed file references and only that: with
	// its sources unpinned, b's root and last chunk go, and the file
	// still reads whole from this node alone.
	n2.stop(t)
	n1.ok(nil, "pin", "rm", ca)
	n1.ok(nil, "pin", "rm", cb)
	beforeGC := stat()
	n1.ok(nil, "repo", "gc")
	if afterGC := stat(); afterGC.Pieces >= beforeGC.Pieces {
		t.Fatalf("gc freed nothing: %d pieces, %d before", afterGC.Pieces, beforeGC.Pieces)
	}
	out := filepath.Join(t.TempDir(), "after-gc")
	n1.ok(nil, "get", c, "-o", out)
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
		t.Fatal("composed file differs after gc")
	}
	if code, _, stderr := n1.run(nil, "compose", ca+":3146000+1000"); code == 0 || !strings.Contains(stderr, "out of bounds") {
		t.Fatalf("compose past the end: exit %d %q", code, stderr)
	}
}
