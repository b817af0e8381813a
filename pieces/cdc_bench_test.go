package pieces

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/restic/chunker"
)

// The cdc chunker's speed against one-core SHA-256 and against restic's
// Rabin chunker (github.com/restic/chunker, test-only), and the pieces
// each keeps across edits in the middle of a file:
//
//	go test ./pieces -run XXX -bench 'SHA256|CDC|Restic|Chunker' -benchtime 5x

const benchSize = 256 << 20

// resticPol is an irreducible polynomial of degree 53 for restic's chunker.
const resticPol = chunker.Pol(0x3DA3358B4DC173)

func benchData() []byte {
	b := make([]byte, benchSize)
	r := rand.NewChaCha8([32]byte{9})
	r.Read(b)
	return b
}

func BenchmarkSHA256OneCore(b *testing.B) {
	data := benchData()
	b.SetBytes(benchSize)
	for b.Loop() {
		for off := 0; off < len(data); off += 1 << 20 {
			sha256.Sum256(data[off : off+1<<20])
		}
	}
}

func BenchmarkCDCScanSerial(b *testing.B) {
	data := benchData()
	b.SetBytes(benchSize)
	for b.Loop() {
		scanSerial(data, 0, len(data), 0, nil)
	}
}

func BenchmarkCDCScanLanes(b *testing.B) {
	data := benchData()
	b.SetBytes(benchSize)
	for b.Loop() {
		scanCandidates(data, 0, len(data), 0, nil)
	}
}

func BenchmarkCDCScanParallel(b *testing.B) {
	data := benchData()
	b.SetBytes(benchSize)
	for b.Loop() {
		scanParallel(data, 0, len(data), 0, runtime.GOMAXPROCS(0), nil)
	}
}

func BenchmarkResticChunker(b *testing.B) {
	data := benchData()
	buf := make([]byte, CDCMaxSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		resticLengths(data, buf)
	}
}

// discard is a Putter that keeps nothing.
type discard struct{}

func (discard) PutPiece(cid.Cid, []byte) error { return nil }

// BenchmarkBuild: the whole builder (cut and hash on GOMAXPROCS cores)
// with each chunker; compare with BenchmarkSHA256OneCore.
func BenchmarkBuild(b *testing.B) {
	data := benchData()
	for _, c := range []Chunker{ChunkerFixed, ChunkerCDC} {
		b.Run(c.String(), func(b *testing.B) {
			opt := DefaultBuildOptions()
			opt.Chunker = c
			b.SetBytes(benchSize)
			for b.Loop() {
				if _, err := Build(context.Background(), bytes.NewReader(data), discard{}, opt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkChunkerDedup reports, for ddc's cdc chunker and restic's set
// to the same bounds and average, the mean chunk and how many chunks of a
// 256 MiB file are new after an edit in its middle.
func BenchmarkChunkerDedup(b *testing.B) {
	data := benchData()
	mid := len(data) / 2
	edits := []struct {
		name string
		data []byte
	}{
		{"overwrite", slices.Concat(data[:mid], []byte{^data[mid]}, data[mid+1:])},
		{"insert", slices.Concat(data[:mid], []byte{7}, data[mid:])},
		{"delete", slices.Concat(data[:mid], data[mid+100<<10:])},
	}
	buf := make([]byte, CDCMaxSize)
	for _, c := range []struct {
		name    string
		lengths func([]byte) []int
	}{
		{"ddc-cdc", RefCDCLengths},
		{"restic", func(d []byte) []int { return resticLengths(d, buf) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				base := c.lengths(data)
				b.ReportMetric(float64(len(data))/float64(len(base))/(1<<20), "MiB/chunk")
				for _, e := range edits {
					b.ReportMetric(float64(newChunks(data, base, e.data, c.lengths(e.data))), "new-"+e.name)
				}
			}
		})
	}
}

func resticLengths(data, buf []byte) []int {
	ch := chunker.NewWithBoundaries(bytes.NewReader(data), resticPol, CDCMinSize, CDCMaxSize)
	ch.SetAverageBits(20)
	var out []int
	for {
		c, err := ch.Next(buf)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			panic(err)
		}
		out = append(out, int(c.Length))
	}
}

// newChunks counts the chunks of b (cut into bl) whose bytes are no chunk
// of a (cut into al).
func newChunks(a []byte, al []int, b []byte, bl []int) int {
	have := map[[32]byte]bool{}
	off := 0
	for _, n := range al {
		have[sha256.Sum256(a[off:off+n])] = true
		off += n
	}
	fresh := 0
	off = 0
	for _, n := range bl {
		if !have[sha256.Sum256(b[off:off+n])] {
			fresh++
		}
		off += n
	}
	return fresh
}
