package integration

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ddcrepo "github.com/ddc-project/ddc/node/repo"
)

// usage is what repo stat --json says of the store.
type usage struct {
	Pieces        uint64 `json:"pieces"`
	PieceBytes    uint64 `json:"piece_bytes"`
	DiskBytes     uint64 `json:"disk_bytes"`
	Allocated     uint64 `json:"allocated_bytes"`
	InPlacePieces uint64 `json:"in_place_pieces"`
	InPlaceBytes  uint64 `json:"in_place_bytes"`
	InPlace       []struct {
		Path   string `json:"path"`
		Pieces int    `json:"pieces"`
	} `json:"in_place"`
}

// counts are what a put that did not commit must leave as they were.
func (u usage) counts() [3]uint64 { return [3]uint64{u.Pieces, u.PieceBytes, u.DiskBytes} }

func (r *repo) usage() usage {
	r.t.Helper()
	var u usage
	if err := json.Unmarshal([]byte(r.ok(nil, "repo", "stat", "--json")), &u); err != nil {
		r.t.Fatal(err)
	}
	return u
}

func blockBytes(t *testing.T, r *repo) int64 {
	t.Helper()
	var n int64
	ents, _ := os.ReadDir(filepath.Join(r.path, "store", "blocks"))
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// TestKilledPutLeavesConsistentRepo kills 'ddc put' with SIGKILL while it
// is storing a file, and checks the repo afterwards.
func TestKilledPutLeavesConsistentRepo(t *testing.T) {
	r := newRepo(t)
	earlier := randomFile(t, 1, 9<<20)
	earlierID := r.put(earlier)
	before := r.usage()
	filesBefore := 1 // pinned files before the round: earlier, and each put that committed

	for round, feedAll := range []bool{false, true, true, true} {
		content := make([]byte, 48<<20)
		rand.NewChaCha8(seedBytes(uint64(100 + round))).Read(content)
		cmd := exec.Command(ddcBin, "--repo", r.path, "put", "-")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		start := blockBytes(t, r)
		if feedAll {
			// Everything is sent: the kill lands somewhere between
			// hashing, appending, syncing and committing.
			stdin.Write(content)
			stdin.Close()
			appended := start + int64(round)<<20 // rounds 1, 2: early
			if round == 3 {
				appended = start + int64(len(content)) // all appended: syncing or committing
			}
			waitFor(t, "the put to append", 30*time.Second, func() bool { return blockBytes(t, r) >= appended })
		} else {
			// Half is sent and the pipe stays open: the put is surely
			// mid-way when it dies.
			stdin.Write(content[:24<<20])
			waitFor(t, "16 MiB appended", 30*time.Second, func() bool { return blockBytes(t, r) >= start+16<<20 })
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		stdin.Close()

		// The repo opens, and what was put earlier reads back.
		got := filepath.Join(t.TempDir(), "earlier")
		r.ok(nil, "get", earlierID, "-o", got)
		if !sameFile(t, earlier, got) {
			t.Fatalf("round %d: the earlier file changed", round)
		}
		var files []struct{ CID string }
		if err := json.Unmarshal([]byte(r.ok(nil, "ls", "--json")), &files); err != nil {
			t.Fatal(err)
		}
		printed := strings.TrimSpace(out.String())
		switch {
		case printed != "" || len(files) > filesBefore:
			// The put committed before the kill: the file must be whole.
			id := files[0].CID
			for _, f := range files {
				if f.CID != earlierID && (printed == "" || f.CID == printed) {
					id = f.CID
				}
			}
			f := filepath.Join(t.TempDir(), "interrupted")
			r.ok(nil, "get", id, "-o", f)
			back, _ := os.ReadFile(f)
			if !bytes.Equal(back, content) {
				t.Fatalf("round %d: the committed file reads back other bytes", round)
			}
			r.ok(nil, "repo", "verify")
			t.Logf("round %d: the put had committed; the file is whole", round)
			before = r.usage()
			filesBefore = len(files)
		default:
			if !feedAll && printed != "" {
				t.Fatal("a put with half its input printed a CID")
			}
			u := r.usage()
			if u.counts() != before.counts() {
				t.Fatalf("round %d: the interrupted put left %+v, want %+v", round, u, before)
			}
			// Reads open the repo read-only and leave the tail alone;
			// the next writer to open it reclaims it.
			w, err := ddcrepo.Open(r.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			w.Close()
			if got := blockBytes(t, r); uint64(got) != u.DiskBytes || u.DiskBytes != before.DiskBytes {
				t.Fatalf("round %d: block files hold %d bytes, want %d", round, got, before.DiskBytes)
			}
			t.Logf("round %d: the put was absent after the kill", round)
		}
	}
	// The repo still takes new files.
	f := randomFile(t, 9, 2<<20+1)
	id := r.put(f)
	out := filepath.Join(t.TempDir(), "after")
	r.ok(nil, "get", id, "-o", out)
	if !sameFile(t, f, out) {
		t.Fatal("a put after the crashes reads back other bytes")
	}
	r.ok(nil, "repo", "verify")
}
