package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/car"
)

// pathCAR fetches url and returns the CAR's blocks in order, each
// checked against its CID by the reader.
func pathCAR(t *testing.T, url string) ([]cid.Cid, memPieces) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	var order []cid.Cid
	m := memPieces{}
	if _, err := car.Import(resp.Body, func(c cid.Cid, data []byte) error {
		order = append(order, c)
		return m.PutPiece(c, data)
	}); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return order, m
}

// TestIPFSPaths: the trustless gateway resolves /ipfs/<root>/<path>
// through ddc directories: a raw request answers with the terminal block,
// a CAR holds the blocks along the path, then the terminal entity as
// dag-scope and entity-bytes say; a directory's CAR is its whole tree,
// which another repo imports and writes out offline.
func TestIPFSPaths(t *testing.T) {
	n := startDaemon(t, newDaemonRepo(t))
	tree := t.TempDir()
	big := randomFile(t, 51, 3<<20+11)
	for p, body := range map[string][]byte{"a/b.txt": []byte("bee"), "a/c/d.bin": nil} {
		full := filepath.Join(tree, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if body == nil {
			body, _ = os.ReadFile(big)
		}
		if err := os.WriteFile(full, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := strings.TrimSpace(n.ok(nil, "put", "-r", tree))
	entry := func(path string) (c cid.Cid, dirs []cid.Cid) {
		var l struct {
			CID string `json:"cid"`
		}
		steps := strings.Split(path, "/")
		for i := range steps {
			if err := json.Unmarshal([]byte(n.ok(nil, "ls", "--json", root+"/"+strings.Join(steps[:i], "/"))), &l); err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, cid.MustParse(l.CID))
		}
		if err := json.Unmarshal([]byte(n.ok(nil, "ls", "--json", root+"/"+path)), &l); err != nil {
			t.Fatal(err)
		}
		return cid.MustParse(l.CID), dirs
	}
	gw := n.gateway() + "/ipfs/" + root

	bee, _ := entry("a/b.txt")
	if raw := httpGet(t, gw+"/a/b.txt?format=raw"); pieces.DefaultHash.Sum(pieces.CodecDagCBOR, raw) != bee {
		t.Fatal("raw /a/b.txt is not the file's root block")
	}
	d, dirs := entry("a/c/d.bin")
	order, blocks := pathCAR(t, gw+"/a/c/d.bin?format=car")
	for i, want := range append(dirs, d) {
		if i >= len(order) || order[i] != want {
			t.Fatalf("CAR block %d is %v, want the path's %s", i, order[min(i, len(order)-1)], want)
		}
	}
	if got := readAll(t, blocks, d); !bytes.Equal(got, mustRead(t, big)) {
		t.Fatal("the CAR's file does not read back")
	}
	if order, _ := pathCAR(t, gw+"/a/c/d.bin?format=car&dag-scope=block"); len(order) != len(dirs)+1 {
		t.Fatalf("dag-scope=block: %d blocks, want the path and the file's root", len(order))
	}
	if order, _ := pathCAR(t, gw+"/a/c/d.bin?format=car&entity-bytes=0:99"); len(order) != len(dirs)+1 {
		// The first 100 bytes are in the root's inline head.
		t.Fatalf("entity-bytes=0:99: %d blocks, want the path and the root", len(order))
	}
	if order, _ := pathCAR(t, gw+"/a/c/d.bin?format=car&entity-bytes=-1:*"); len(order) != len(dirs)+2 {
		t.Fatalf("entity-bytes=-1:*: %d blocks, want the path, the root and the last chunk", len(order))
	}
	resp, err := http.Get(gw + "/a/nope?format=car")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a missing path: %s", resp.Status)
	}

	// The whole tree as a CAR, from the gateway and from export, into a
	// repo that has never seen it.
	f := filepath.Join(t.TempDir(), "tree.car")
	n.ok(nil, "export", root, "-o", f)
	order, _ = pathCAR(t, gw+"?format=car")
	if b, _ := os.ReadFile(f); len(order) == 0 || !bytes.Contains(b, order[len(order)-1].Bytes()) {
		t.Fatal("export and the gateway's CAR differ")
	}
	other := newRepo(t)
	other.ok(nil, "import", f)
	out := filepath.Join(t.TempDir(), "out")
	other.ok(nil, "get", root, "-o", out)
	sameTree(t, tree, out)
}

func readAll(t *testing.T, g pieces.Getter, c cid.Cid) []byte {
	t.Helper()
	f, err := pieces.Open(context.Background(), g, c)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
