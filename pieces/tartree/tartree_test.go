package tartree_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/tartree"
)

type memStore struct {
	mu sync.Mutex
	m  map[cid.Cid][]byte
}

func (s *memStore) PutPiece(c cid.Cid, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[c] = bytes.Clone(data)
	return nil
}

func (s *memStore) GetPiece(_ context.Context, c cid.Cid) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.m[c]; ok {
		return b, nil
	}
	return nil, &pieces.NotFoundError{CID: c}
}

func writeTree(t *testing.T, dir string, files map[string]string, empty ...string) {
	for p, body := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if filepath.Ext(p) == ".sh" {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range empty {
		if err := os.MkdirAll(filepath.Join(dir, e), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot maps every path below dir to its content ("/" for folders) and
// whether it is executable.
func snapshot(t *testing.T, dir string) map[string]string {
	out := make(map[string]string)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, _ := d.Info()
		switch {
		case d.IsDir():
			out[rel] = "/"
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = string(b) + map[bool]string{true: " (x)", false: ""}[info.Mode()&0o100 != 0]
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	src := t.TempDir()
	big := string(bytes.Repeat([]byte("0123456789"), 300_000))
	writeTree(t, src, map[string]string{"a.txt": "alpha", "sub/b.txt": "beta", "sub/deep/c.bin": big, "run.sh": "#!/bin/sh", "sub/empty.txt": ""}, "nothing/here")
	var buf bytes.Buffer
	if err := tartree.WriteDir(context.Background(), &buf, src); err != nil {
		t.Fatal(err)
	}
	s := &memStore{m: make(map[cid.Cid][]byte)}
	opt := pieces.DefaultBuildOptions()
	b, err := pieces.NewTreeBuilder(s, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := tartree.Build(context.Background(), &buf, b); err != nil {
		t.Fatal(err)
	}
	res, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 5 || res.Dirs != 5 {
		t.Fatalf("tree of %d files, %d folders", res.Files, res.Dirs)
	}
	var out bytes.Buffer
	st, err := tartree.WriteTree(context.Background(), s, res.Root, &out)
	if err != nil || st.Files != 5 {
		t.Fatalf("write tree: %+v %v", st, err)
	}
	dst := filepath.Join(t.TempDir(), "out")
	if _, err := tartree.Extract(context.Background(), &out, dst); err != nil {
		t.Fatal(err)
	}
	want, got := snapshot(t, src), snapshot(t, dst)
	if len(want) != len(got) {
		t.Fatalf("got %d paths, want %d", len(got), len(want))
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s differs", p)
		}
	}
	// The same tree put again is the same CID.
	var again bytes.Buffer
	if err := tartree.WriteDir(context.Background(), &again, src); err != nil {
		t.Fatal(err)
	}
	b2, _ := pieces.NewTreeBuilder(s, opt)
	if err := tartree.Build(context.Background(), &again, b2); err != nil {
		t.Fatal(err)
	}
	if res2, err := b2.Finish(); err != nil || res2.Root != res.Root {
		t.Fatalf("second put %s, first %s (%v)", res2.Root, res.Root, err)
	}
}

// TestUnsafeStreams: a tar stream naming paths outside the tree, or a
// link, is refused by Build and by Extract, and nothing is written
// outside the target.
func TestUnsafeStreams(t *testing.T) {
	for _, h := range []tar.Header{
		{Typeflag: tar.TypeReg, Name: "../escape"},
		{Typeflag: tar.TypeReg, Name: "a/../../escape"},
		{Typeflag: tar.TypeReg, Name: "/tmp/escape"},
		{Typeflag: tar.TypeReg, Name: "nul\x00x"},
		{Typeflag: tar.TypeSymlink, Name: "link", Linkname: "/etc/passwd"},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		h.Size = 0
		if err := tw.WriteHeader(&h); err != nil {
			t.Logf("%q: tar itself refuses: %v", h.Name, err)
			continue
		}
		tw.Close()
		s := &memStore{m: make(map[cid.Cid][]byte)}
		b, _ := pieces.NewTreeBuilder(s, pieces.DefaultBuildOptions())
		if err := tartree.Build(context.Background(), bytes.NewReader(buf.Bytes()), b); err == nil {
			t.Errorf("build of %q: no error", h.Name)
		}
		parent := t.TempDir()
		dst := filepath.Join(parent, "dst")
		_, err := tartree.Extract(context.Background(), bytes.NewReader(buf.Bytes()), dst)
		if err == nil || !(errors.Is(err, pieces.ErrBadName) || errors.Is(err, tartree.ErrUnsupported)) {
			t.Errorf("extract of %q: %v", h.Name, err)
		}
		if _, err := os.Stat(filepath.Join(parent, "escape")); err == nil {
			t.Errorf("%q wrote outside the target", h.Name)
		}
	}
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a": "x"})
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tartree.WriteDir(context.Background(), &buf, src); !errors.Is(err, tartree.ErrUnsupported) {
		t.Fatalf("a folder with a symlink: %v", err)
	}
}
