package pieces

import (
	"fmt"
	"sync"
)

// Content-defined chunking (FastCDC-style gear hash with normalized
// chunking). Where the cuts fall decides the data pieces, so the CIDs of a
// file put with the cdc chunker: the gear table, its seed, the hash's
// definition and every constant below are a format commitment. Changing
// any of them changes the CID of every file put with --chunker cdc.
//
// The hash at byte i of the chunked stream (the file after its inline
// head) is h(i) = sum over j in [0, min(i, 63)] of gear[b[i-j]] << j,
// mod 2^64: the recurrence h = h<<1 + gear[b] started at 0 at the stream's
// first byte. It depends only on the last 64 bytes, which is what lets
// disjoint regions be scanned in parallel with identical results. Byte i
// is a weak candidate when the top cdcWeakBits bits of h(i) are zero and a
// strong one when the top cdcStrongBits are (every strong candidate is
// also weak). A chunk starting at p of length L = i+1-p ends at byte i:
//
//   - never while L < CDCMinSize;
//   - at the first strong candidate while L < CDCNormalSize;
//   - else at the first weak candidate while L <= CDCMaxSize;
//   - else at L = CDCMaxSize; and the stream's end ends the last chunk.
const (
	// CDCMinSize is the smallest chunk the cdc chunker cuts (but the last).
	CDCMinSize = 256 << 10
	// CDCNormalSize is where the cut test eases from strong to weak.
	CDCNormalSize = 1 << 20
	// CDCMaxSize is the largest chunk: a forced cut, within MaxPieceSize.
	CDCMaxSize = 4 << 20

	// cdcStrongBits: a strong cut point has 1 chance in 2^22 a byte.
	cdcStrongBits = 22
	// cdcWeakBits: a weak one 1 in 2^18 (normalization level 2 around
	// the 2^20 normal size).
	cdcWeakBits = 18

	// gearSeed seeds the SplitMix64 sequence that fills gearTable.
	gearSeed = 0x64646320_67656172 // "ddc gear"

	cdcWindow = 64 // bytes one hash value depends on
)

const (
	cdcStrongLimit = uint64(1) << (64 - cdcStrongBits) // h below it: strong
	cdcWeakLimit   = uint64(1) << (64 - cdcWeakBits)   // h below it: weak
)

var _ [MaxPieceSize - CDCMaxSize]struct{} // fails to compile unless CDCMaxSize fits a piece

// gearTable maps each byte to a pseudo-random 64-bit value: SplitMix64
// from gearSeed, entry k the (k+1)-th output. TestGearTable pins it.
var gearTable = func() (t [256]uint64) {
	s := uint64(gearSeed)
	for k := range t {
		s += 0x9e3779b97f4a7c15
		z := s
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		t[k] = z ^ z>>31
	}
	return t
}()

// Chunker says how Build cuts a file's bytes after the inline head.
type Chunker uint8

const (
	// ChunkerFixed cuts pieces of ChunkSize bytes (the default).
	ChunkerFixed Chunker = iota
	// ChunkerCDC cuts where the content says (CDCMinSize to CDCMaxSize),
	// so an insert or a delete changes only the pieces around it.
	ChunkerCDC
)

// String is the chunker's name, as --chunker takes it.
func (c Chunker) String() string {
	switch c {
	case ChunkerFixed:
		return "fixed"
	case ChunkerCDC:
		return "cdc"
	}
	return fmt.Sprintf("chunker(%d)", uint8(c))
}

// ParseChunker reads a chunker's name: fixed or cdc.
func ParseChunker(s string) (Chunker, error) {
	switch s {
	case "fixed":
		return ChunkerFixed, nil
	case "cdc":
		return ChunkerCDC, nil
	}
	return 0, fmt.Errorf("chunker %q: want fixed or cdc", s)
}

// cand is a cut candidate: the stream offset just past the byte whose hash
// passed the weak test, and whether it passed the strong one too.
type cand struct {
	end    uint64
	strong bool
}

// scanCandidates appends to out the candidates among buf[from:to], where
// buf[0] is stream offset base. buf must hold the cdcWindow-1 bytes before
// from, or start at the stream's first byte.
func scanCandidates(buf []byte, from, to int, base uint64, out []cand) []cand {
	const lanes = 4
	n := (to - from) / lanes
	if n < 4*cdcWindow {
		return scanSerial(buf, from, to, base, out)
	}
	// Four interleaved lanes break the hash's dependency chain; each warms
	// up on the window before its start, so results match a serial scan.
	var h [lanes]uint64
	var start [lanes]int
	for k := range lanes {
		start[k] = from + k*n
		for _, c := range buf[max(0, start[k]-(cdcWindow-1)):start[k]] {
			h[k] = h[k]<<1 + gearTable[c]
		}
	}
	b0 := buf[start[0] : start[0]+n]
	b1 := buf[start[1] : start[1]+n]
	b2 := buf[start[2] : start[2]+n]
	b3 := buf[start[3] : start[3]+n]
	b1, b2, b3 = b1[:len(b0)], b2[:len(b0)], b3[:len(b0)]
	var found [lanes][]cand
	h0, h1, h2, h3 := h[0], h[1], h[2], h[3]
	for j := range b0 {
		h0 = h0<<1 + gearTable[b0[j]]
		h1 = h1<<1 + gearTable[b1[j]]
		h2 = h2<<1 + gearTable[b2[j]]
		h3 = h3<<1 + gearTable[b3[j]]
		if h0 < cdcWeakLimit || h1 < cdcWeakLimit || h2 < cdcWeakLimit || h3 < cdcWeakLimit {
			for k, hk := range [lanes]uint64{h0, h1, h2, h3} {
				if hk < cdcWeakLimit {
					found[k] = append(found[k], cand{base + uint64(start[k]+j+1), hk < cdcStrongLimit})
				}
			}
		}
	}
	for k := range lanes {
		out = append(out, found[k]...)
	}
	// The last lane's remainder, its hash carried on.
	for i := start[3] + n; i < to; i++ {
		h3 = h3<<1 + gearTable[buf[i]]
		if h3 < cdcWeakLimit {
			out = append(out, cand{base + uint64(i+1), h3 < cdcStrongLimit})
		}
	}
	return out
}

// scanSerial is scanCandidates one byte after the other.
func scanSerial(buf []byte, from, to int, base uint64, out []cand) []cand {
	var h uint64
	for _, c := range buf[max(0, from-(cdcWindow-1)):from] {
		h = h<<1 + gearTable[c]
	}
	for i := from; i < to; i++ {
		h = h<<1 + gearTable[buf[i]]
		if h < cdcWeakLimit {
			out = append(out, cand{base + uint64(i+1), h < cdcStrongLimit})
		}
	}
	return out
}

// scanParallel is scanCandidates split over up to workers goroutines,
// each on a disjoint region; regions are joined in order.
func scanParallel(buf []byte, from, to int, base uint64, workers int, out []cand) []cand {
	const minRegion = 1 << 20
	parts := min(workers, (to-from)/minRegion)
	if parts <= 1 {
		return scanCandidates(buf, from, to, base, out)
	}
	found := make([][]cand, parts)
	var wg sync.WaitGroup
	size := (to - from) / parts
	for k := range parts {
		lo, hi := from+k*size, from+(k+1)*size
		if k == parts-1 {
			hi = to
		}
		wg.Go(func() { found[k] = scanCandidates(buf, lo, hi, base, nil) })
	}
	wg.Wait()
	for _, f := range found {
		out = append(out, f...)
	}
	return out
}

// cutter picks the cuts from the candidates of a stream, in order.
type cutter struct {
	start uint64 // where the current chunk begins
	cands []cand // candidates past start, in order
	next  int    // cands[:next] are behind start
}

// add appends candidates found further on in the stream.
func (c *cutter) add(cs []cand) {
	if c.next > 0 && c.next == len(c.cands) {
		c.cands, c.next = c.cands[:0], 0
	}
	c.cands = append(c.cands, cs...)
}

// cut returns where the chunk at c.start ends, given that candidates are
// known for the stream up to end, and moves on to the next chunk; ok is
// false when more of the stream must be scanned first. With eof, end is
// the stream's end.
func (c *cutter) cut(end uint64, eof bool) (at uint64, ok bool) {
	if end <= c.start {
		return 0, false
	}
	at, ok = c.find(end)
	if !ok && eof {
		at, ok = end, true
	}
	if ok {
		c.start = at
		for c.next < len(c.cands) && c.cands[c.next].end <= at {
			c.next++
		}
		if c.next > len(c.cands)/2 && c.next > 64 { // keep the list short
			c.cands = append(c.cands[:0], c.cands[c.next:]...)
			c.next = 0
		}
	}
	return at, ok
}

func (c *cutter) find(end uint64) (uint64, bool) {
	minEnd, normal, maxEnd := c.start+CDCMinSize, c.start+CDCNormalSize, c.start+CDCMaxSize
	for _, k := range c.cands[c.next:] {
		switch {
		case k.end < minEnd:
		case k.end < normal:
			if k.strong {
				return k.end, true
			}
		case k.end <= maxEnd:
			return k.end, true
		default:
			return maxEnd, true
		}
	}
	if end >= maxEnd {
		return maxEnd, true
	}
	return 0, false
}
