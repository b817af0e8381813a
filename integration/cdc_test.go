package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCDCEditsThroughDaemon: a 64 MiB file put with --chunker cdc through
// the daemon, then edited in its middle and put again, grows the store by
// the few pieces around the edit (repo stat), where the fixed chunker
// stores every piece after an insert anew. Offline, cdc gives the same
// CID as through the daemon, and the file reads back whole.
func TestCDCEditsThroughDaemon(t *testing.T) {
	const size = 64 << 20
	orig := randomFile(t, 29, size)
	data, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	mid := size / 2
	write := func(name string, b []byte) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	edits := []struct {
		name             string
		path             string
		cdcNew, fixedNew int // most new data pieces; fixedNew < 0: at least -fixedNew
	}{
		{"overwrite 1 byte", write("over", bytes.Join([][]byte{data[:mid], {^data[mid]}, data[mid+1:]}, nil)), 2, 2},
		{"insert 1 byte", write("ins", bytes.Join([][]byte{data[:mid], {7}, data[mid:]}, nil)), 3, -size / 2 / (1 << 20)},
		{"delete 100 KiB", write("del", bytes.Join([][]byte{data[:mid], data[mid+100<<10:]}, nil)), 3, -(size/2/(1<<20) - 1)},
	}
	d := startDaemon(t, newDaemonRepo(t))
	for _, chunker := range []string{"cdc", "fixed"} {
		before := d.usage()
		id := d.put(orig, "--chunker", chunker)
		base := d.usage()
		if chunker == "cdc" {
			if n := base.Pieces - before.Pieces; n < size/(2<<20) || n > size/(512<<10) {
				t.Fatalf("cdc cut 64 MiB into %d pieces", n)
			}
			out := filepath.Join(t.TempDir(), "out")
			d.ok(nil, "get", id, "-o", out)
			if !sameFile(t, orig, out) {
				t.Fatal("the file put with cdc reads back different")
			}
			off := newRepo(t)
			if got := off.put(orig, "--chunker", "cdc"); got != id {
				t.Fatalf("cdc put offline gave %s, through the daemon %s", got, id)
			}
			if got := off.put(orig); got == id {
				t.Fatal("the default (fixed) put gave the cdc CID")
			}
		}
		for _, e := range edits {
			u0 := d.usage()
			d.put(e.path, "--chunker", chunker)
			u1 := d.usage()
			grew := int(u1.Pieces - u0.Pieces)
			most := e.cdcNew
			if chunker == "fixed" {
				most = e.fixedNew
			}
			t.Logf("%s, %s: +%d pieces, +%d bytes", chunker, e.name, grew, u1.PieceBytes-u0.PieceBytes)
			switch {
			case grew < 2: // a data piece and the root descriptor at least
				t.Errorf("%s, %s: the store grew by %d pieces", chunker, e.name, grew)
			case most > 0 && grew > most+1:
				t.Errorf("%s, %s: the store grew by %d pieces, want at most %d data pieces and the root", chunker, e.name, grew, most)
			case most > 0 && u1.PieceBytes-u0.PieceBytes > uint64(most)*4<<20+64<<10:
				t.Errorf("%s, %s: the store grew by %d bytes", chunker, e.name, u1.PieceBytes-u0.PieceBytes)
			case most < 0 && grew < -most:
				t.Errorf("%s, %s: the store grew by only %d pieces; fixed chunks should all shift", chunker, e.name, grew)
			}
		}
	}
}
