package integration

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSharedChunkStaysPublic: a public file that shares a chunk with a
// private one stays fully readable, through a gateway whose node holds
// that chunk only for the private file too, while the private file stays
// closed to anyone without a grant.
func TestSharedChunkStaysPublic(t *testing.T) {
	owner := startDaemon(t, newDaemonRepo(t))
	other := startDaemon(t, newDaemonRepo(t), "--bootstrap", owner.tcpAddr())
	fresh := startDaemon(t, newDaemonRepo(t), "--bootstrap", owner.tcpAddr())

	// Both files: 4 KiB inline, then 1 MiB chunks; the first chunk is the
	// same bytes in both.
	part := func(seed uint64, n int) []byte {
		b := make([]byte, n)
		io.ReadFull(rand.NewChaCha8(seedBytes(seed)), b)
		return b
	}
	shared := part(70, 1<<20)
	private := bytes.Join([][]byte{part(71, 4096), shared, part(72, 1<<20)}, nil)
	public := bytes.Join([][]byte{part(73, 4096), shared, part(74, 300_000)}, nil)
	write := func(name string, b []byte) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	b := strings.TrimSpace(owner.ok(nil, "bucket", "create", "--private"))
	pc := owner.put(write("private", private), "-b", b)
	qc := other.put(write("public", public))
	blocks := carBlocks(t, owner, pc)
	if len(blocks) != 3 {
		t.Fatalf("the private file has %d blocks, want a descriptor and two chunks", len(blocks))
	}
	sharedChunk, ownChunk := blocks[1].String(), blocks[2].String()

	for _, g := range []*daemon{fresh, owner} { // the owner's node holds the shared chunk only for the private file
		a := request(t, "GET", g.gateway()+"/ddc/file/"+qc)
		if a.status != 200 || !bytes.Equal(a.body, public) {
			t.Fatalf("the public file through %s: %d, %d bytes; want all of it", g.path, a.status, len(a.body))
		}
		if a := request(t, "GET", g.gateway()+"/ipfs/"+sharedChunk+"?format=raw"); a.status != 200 || !bytes.Equal(a.body, shared) {
			t.Fatalf("the shared chunk, raw, through %s: %d, %d bytes", g.path, a.status, len(a.body))
		}
		for _, path := range []string{"/ddc/file/" + pc, "/ddc/buc/" + b + "/file/" + pc, "/ipfs/" + pc + "?format=raw", "/ipfs/" + ownChunk + "?format=raw", "/ipfs/" + pc + "?format=car"} {
			if a := request(t, "GET", g.gateway()+path); a.status != 403 || bytes.Contains(a.body, private[:64]) {
				t.Fatalf("the private file's %s through %s: %d, want 403", path, g.path, a.status)
			}
		}
	}
	// A stranger's node reads the public file too, and not the private.
	out := filepath.Join(t.TempDir(), "q")
	fresh.ok(nil, "get", qc, "-o", out)
	if got, _ := os.ReadFile(out); !bytes.Equal(got, public) {
		t.Fatal("ddc get of the public file gave other bytes")
	}
	fresh.denied(t, 6, "not found or not permitted", pc)
}
