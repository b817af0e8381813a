package pieces

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"slices"
	"testing"
)

// RefCDCLengths is the serial reference of the cdc chunker, written from
// its definition in cdc.go one byte at a time: the lengths of the chunks
// it cuts data into.
func RefCDCLengths(data []byte) []int {
	var (
		h     uint64
		start int
		out   []int
	)
	for i, b := range data {
		h = h<<1 + gearTable[b]
		l := i + 1 - start
		top22, top18 := h>>(64-22) == 0, h>>(64-18) == 0
		if l >= 256<<10 && (l < 1<<20 && top22 || l >= 1<<20 && top18 || l == 4<<20) {
			out = append(out, l)
			start = i + 1
		}
	}
	if start < len(data) {
		out = append(out, len(data)-start)
	}
	return out
}

// TestGearTable pins the gear table: it is part of the format, and a
// change would change the CID of every file put with the cdc chunker.
func TestGearTable(t *testing.T) {
	var b []byte
	for _, v := range gearTable {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	sum := sha256.Sum256(b)
	const want = "e661d02fd982e78f566b719fe68d3adbc2a20f414d7ccd1552af1e1d3e14c1f4"
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("gear table SHA-256 %s, want %s (the table is a format commitment)", got, want)
	}
	if gearTable[0] == gearTable[1] {
		t.Fatal("gear table entries repeat")
	}
}

// TestScanLanesMatchSerial: the four-lane scan and the parallel split
// find exactly the candidates of a serial scan, whatever the region.
func TestScanLanesMatchSerial(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 24<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	want := scanSerial(data, 0, len(data), 7, nil)
	if len(want) < 50 {
		t.Fatalf("only %d candidates in 24 MiB of random data", len(want))
	}
	if got := scanCandidates(data, 0, len(data), 7, nil); !slices.Equal(got, want) {
		t.Fatalf("lanes found %d candidates, serial %d", len(got), len(want))
	}
	for _, w := range []int{2, 3, 5} {
		if got := scanParallel(data, 0, len(data), 7, w, nil); !slices.Equal(got, want) {
			t.Fatalf("%d workers found %d candidates, serial %d", w, len(got), len(want))
		}
	}
	for range 40 { // sub-regions with their window before them
		from := rng.IntN(len(data))
		to := from + rng.IntN(len(data)-from+1)
		var sub []cand
		for _, c := range want {
			if c.end > uint64(from)+7 && c.end <= uint64(to)+7 {
				sub = append(sub, c)
			}
		}
		if got := scanCandidates(data, from, to, 7, nil); !slices.Equal(got, sub) {
			t.Fatalf("region [%d,%d): lanes found %d candidates, serial %d", from, to, len(got), len(sub))
		}
	}
}

// StrongPattern returns a 64-byte pattern that, repeated, has a strong cut
// candidate in every period: the densest candidates data can have.
func StrongPattern() []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	pat := make([]byte, cdcWindow)
	for {
		for i := range pat {
			pat[i] = byte(rng.Uint32())
		}
		var h uint64
		for i := range 2 * cdcWindow {
			h = h<<1 + gearTable[pat[i%cdcWindow]]
			if i >= cdcWindow && h < cdcStrongLimit {
				return pat
			}
		}
	}
}
