package integration

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ddc-project/ddc/pieces"
)

func TestRoundTripThroughCLI(t *testing.T) {
	r := newRepo(t)
	const mib = 1 << 20
	cases := []struct {
		name string
		size int64
		args []string
		// minDepth is the least tree depth stat must report.
		minDepth int
	}{
		{"empty", 0, nil, 0},
		{"one byte", 1, nil, 0},
		{"exactly one chunk", mib, nil, 0},
		{"one chunk after the inline head", 4096 + mib, nil, 0},
		{"one chunk plus one", mib + 1, nil, 0},
		{"300 MiB", 300 * mib, nil, 0},
		{"two-level tree", 2 * mib, []string{"--chunk-size", "512"}, 1},
		{"blake3", 3*mib + 7, []string{"--hash", "blake3"}, 0},
		{"blake2b-256", 3*mib + 7, []string{"--hash", "blake2b-256"}, 0},
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r.t = t
			src := randomFile(t, uint64(i), tc.size)
			id := r.put(src, tc.args...)
			out := filepath.Join(t.TempDir(), "out")
			r.ok(nil, "get", id, "-o", out)
			if !sameFile(t, src, out) {
				t.Fatalf("get of %s returned other bytes", id)
			}
			var st struct {
				Size  int64
				Depth int
			}
			if err := json.Unmarshal([]byte(r.ok(nil, "stat", id, "--json")), &st); err != nil {
				t.Fatal(err)
			}
			if st.Size != tc.size || st.Depth < tc.minDepth {
				t.Fatalf("stat: size %d depth %d; want %d, at least %d", st.Size, st.Depth, tc.size, tc.minDepth)
			}
			if tc.size == 0 {
				return
			}
			f, err := os.Open(src)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for range 8 {
				off := rng.Int64N(tc.size)
				n := rng.Int64N(min(tc.size-off, 3*mib)) + 1
				want := make([]byte, n)
				f.ReadAt(want, off)
				got := r.ok(nil, "cat", id, "--offset", strconv.FormatInt(off, 10), "--length", strconv.FormatInt(n, 10))
				if got != string(want) {
					t.Fatalf("cat --offset %d --length %d: %d bytes, not the slice", off, n, len(got))
				}
			}
		})
	}
}

func TestSameBytesSameCIDStoredOnce(t *testing.T) {
	r := newRepo(t)
	src := randomFile(t, 42, 5<<20+123)
	a := r.put(src)
	usage := r.ok(nil, "repo", "stat", "--json")
	b := r.put(src)
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := strings.TrimSpace(r.ok(f, "put", "-"))
	if a != b || a != c {
		t.Fatalf("same bytes gave CIDs %s, %s, %s (stdin)", a, b, c)
	}
	if again := r.ok(nil, "repo", "stat", "--json"); again != usage {
		t.Fatalf("putting the same bytes again stored more:\n%s\n%s", usage, again)
	}
}

func TestFlippedByteIsReportedWithItsCID(t *testing.T) {
	r := newRepo(t)
	src := randomFile(t, 7, 3<<20)
	id := r.put(src)
	// Pieces are appended in file order: the first data chunk (after the
	// 4 KiB inline head) sits at block offset 0, the second at 1 MiB.
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	second := pieces.SHA2_256.Sum(pieces.CodecRaw, data[4096+1<<20:4096+2<<20])
	blk := filepath.Join(r.path, "store", "blocks", "00000001.blk")
	raw, err := os.ReadFile(blk)
	if err != nil {
		t.Fatal(err)
	}
	raw[1<<20+12345] ^= 0x40
	if err := os.WriteFile(blk, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	code, _, errs := r.run(nil, "get", id, "-o", out)
	if code != 4 || !strings.Contains(errs, second.String()) || !strings.Contains(errs, "corrupt") {
		t.Fatalf("get of a corrupted file: exit %d, %q; want exit 4 naming %s", code, errs, second)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatal("a failed get left a file at the output path")
	}
	if code, _, _ := r.run(nil, "cat", id, "--length", "4096"); code != 0 {
		t.Fatal("reading the intact inline head failed")
	}
	if st := r.ok(nil, "stat", id); !strings.Contains(st, "3.0 MiB") {
		t.Fatalf("stat after corruption: %s", st)
	}
	code, _, errs = r.run(nil, "repo", "verify")
	if code != 4 || !strings.Contains(errs, second.String()) {
		t.Fatalf("repo verify: exit %d, %q", code, errs)
	}
}

func TestTagsShowInStatAndLs(t *testing.T) {
	r := newRepo(t)
	id := strings.TrimSpace(r.ok(bytes.NewReader([]byte("tagged")), "put", "-", "-t", "title=A Song", "-t", "year=1999"))
	if ls := r.ok(nil, "ls"); !strings.Contains(ls, id) || !strings.Contains(ls, "title=A Song year=1999") {
		t.Fatalf("ls: %s", ls)
	}
}
