package pieces

import (
	"bytes"
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
	// Candidates every 64 bytes: a region that skips a byte of its window
	// misses one.
	dense := bytes.Repeat(PeriodicPattern(true), 1<<16)
	all := scanSerial(dense, 0, len(dense), 0, nil)
	if len(all) != len(dense)/64 {
		t.Fatalf("%d candidates in %d bytes of the periodic pattern", len(all), len(dense))
	}
	for range 20 {
		from := rng.IntN(len(dense))
		to := from + rng.IntN(len(dense)-from+1)
		if got, sub := scanParallel(dense, from, to, 0, 3, nil), within(all, from, to, 0); !slices.Equal(got, sub) {
			t.Fatalf("dense region [%d,%d): %d candidates, want %d", from, to, len(got), len(sub))
		}
	}
	for m := 4; m < 12; m++ { // every lane starts on a candidate byte
		from := 64*rng.IntN(1000) + 63
		for _, to := range []int{from + 4*64*m, from + 63} {
			if got, sub := scanCandidates(dense, from, to, 0, nil), within(all, from, to, 0); !slices.Equal(got, sub) || len(sub) == 0 {
				t.Fatalf("dense region [%d,%d): %d candidates, want %d", from, to, len(got), len(sub))
			}
		}
	}
	for range 40 { // sub-regions with their window before them
		from := rng.IntN(len(data))
		to := from + rng.IntN(len(data)-from+1)
		sub := within(want, from, to, 7)
		if got := scanCandidates(data, from, to, 7, nil); !slices.Equal(got, sub) {
			t.Fatalf("region [%d,%d): lanes found %d candidates, serial %d", from, to, len(got), len(sub))
		}
	}
}

// PeriodicPattern returns a 64-byte pattern that, repeated, has one cut
// candidate a period, at its last byte: a strong one, or a weak one only.
// Repeated from a chunk's start, its candidates end on multiples of 64.
func PeriodicPattern(strong bool) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	pat := make([]byte, cdcWindow)
	for {
		for i := range pat {
			pat[i] = byte(rng.Uint32())
		}
		var h uint64
		phase, weak, strongs := 0, 0, 0
		for i := range 2 * cdcWindow {
			h = h<<1 + gearTable[pat[i%cdcWindow]]
			if i >= cdcWindow && h < cdcWeakLimit {
				phase, weak = i%cdcWindow, weak+1
				if h < cdcStrongLimit {
					strongs++
				}
			}
		}
		if weak == 1 && (strongs == 1) == strong {
			// Rotate so the candidate falls on the period's last byte.
			return slices.Concat(pat[phase+1:], pat[:phase+1])
		}
	}
}

// within is the candidates of bytes [from, to) of a stream at base.
func within(cs []cand, from, to int, base uint64) []cand {
	var out []cand
	for _, c := range cs {
		if c.end > uint64(from)+base && c.end <= uint64(to)+base {
			out = append(out, c)
		}
	}
	return out
}
