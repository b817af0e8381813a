package store_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
)

// benchDescriptor is file i of the search benchmark's repo: in group
// g%05d (100 files each of 1,000,000), under /d%03d/ (1,000 each), n=i,
// and one in a hundred has the tag rare.
func benchDescriptor(i int) pieces.Piece {
	tg := tags(fmt.Sprintf("g=g%05d", i%10000), fmt.Sprintf("path=/d%03d/f%07d", i%1000, i), "n="+strconv.Itoa(i), "content-type=video/mp4")
	if i%100 == 0 {
		tg = append(tg, tags("rare=1")...)
	}
	return pieces.Piece{Data: []byte(fmt.Sprintf("file %d", i)), Tags: tg}
}

// BenchmarkSearch1M builds a repo of DDC_BENCH_DESCRIPTORS (default
// 1,000,000) tagged descriptors and times queries on it, each against
// the floor of its work: reading and decoding the descriptors it returns
// (or scans) by CID, without the index.
//
//	go test ./pieces/store -run XXX -bench Search1M -benchtime 200x
func BenchmarkSearch1M(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("DDC_BENCH_DESCRIPTORS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	opts := store.DefaultOptions()
	s, err := store.Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	cids := make([]cid.Cid, n)
	tx := s.Begin()
	for i := range n {
		p := benchDescriptor(i)
		data, c, err := p.EncodeCID(pieces.SHA2_256)
		if err != nil {
			b.Fatal(err)
		}
		cids[i] = c
		if err := tx.PutPiece(c, data); err != nil {
			b.Fatal(err)
		}
		tx.Pin(c)
		if i%10000 == 9999 {
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			tx = s.Begin()
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d descriptors stored and indexed in %v", n, time.Since(start).Round(time.Millisecond))

	readAll := func(b *testing.B, which []cid.Cid) {
		var buf []byte
		for _, c := range which {
			if buf, err = s.ReadPiece(ctx, c, buf); err != nil {
				b.Fatal(err)
			}
			if _, err := pieces.Decode(c, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	query := func(b *testing.B, want int, terms ...string) {
		q := mustQuery(b, terms...)
		b.ResetTimer()
		for range b.N {
			p, err := s.Search(ctx, store.NoBucket, q, nil, 100)
			if err != nil || len(p.Results) != want {
				b.Fatalf("%q: %d results, %v", terms, len(p.Results), err)
			}
		}
	}
	every := func(from, step, count int) []cid.Cid {
		var out []cid.Cid
		for i := from; len(out) < count && i < n; i += step {
			out = append(out, cids[i])
		}
		return out
	}
	mid := n / 2
	b.Run("exact-100", func(b *testing.B) { query(b, min(100, n/10000), "g=g04242") })
	b.Run("exact-100-floor", func(b *testing.B) {
		which := every(4242, 10000, 100)
		for range b.N {
			readAll(b, which)
		}
	})
	b.Run("prefix-100", func(b *testing.B) { query(b, min(100, n/1000), "path^=/d042/") })
	b.Run("prefix-100-floor", func(b *testing.B) {
		which := every(42, 1000, 100)
		for range b.N {
			readAll(b, which)
		}
	})
	b.Run("range-scan-10000", func(b *testing.B) {
		query(b, min(100, n/100), "n>="+strconv.Itoa(mid), "n<"+strconv.Itoa(mid+10000), "rare")
	})
	b.Run("range-scan-10000-floor", func(b *testing.B) {
		which := every(mid, 1, 10000)
		for range b.N {
			readAll(b, which)
		}
	})
	// A rebuild of 1M descriptors takes tens of seconds: the reindex
	// figures come from one run each, whatever -benchtime says.
	b.Run("reindex", func(b *testing.B) {
		for range 1 {
			t0 := time.Now()
			got, err := s.Reindex(ctx)
			if err != nil || got != n {
				b.Fatalf("reindexed %d of %d: %v", got, n, err)
			}
			b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "descriptors/s")
		}
	})
	b.Run("reindex-fresh", func(b *testing.B) { // a store from before the index, as at the first open
		for range 1 {
			b.StopTimer()
			store.ClearTags(b, s)
			b.StartTimer()
			t0 := time.Now()
			got, err := s.Reindex(ctx)
			if err != nil || got != n {
				b.Fatalf("reindexed %d of %d: %v", got, n, err)
			}
			b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "descriptors/s")
		}
	})
	b.Run("reindex-floor", func(b *testing.B) {
		for range 1 {
			t0 := time.Now()
			readAll(b, cids)
			b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "descriptors/s")
		}
	})
}

// BenchmarkPutSmallFiles puts many small tagged files, each in its own
// commit as 'ddc put' does, with the tag index and without: what indexing
// adds to a put.
//
//	go test ./pieces/store -run XXX -bench PutSmallFiles -benchtime 2000x -count 3
func BenchmarkPutSmallFiles(b *testing.B) {
	for _, indexed := range []bool{true, false} {
		b.Run(fmt.Sprintf("indexed=%v", indexed), func(b *testing.B) {
			opts := store.DefaultOptions()
			opts.NoTagIndex = !indexed
			s, err := store.Open(b.TempDir(), opts)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			chunk := make([]byte, 8192)
			b.ResetTimer()
			for i := range b.N {
				chunk[0], chunk[1], chunk[2] = byte(i), byte(i>>8), byte(i>>16)
				cc := pieces.SHA2_256.Sum(pieces.CodecRaw, chunk)
				p := benchDescriptor(i)
				p.Links = []pieces.Link{{CID: cc, Size: uint64(len(chunk))}}
				data, c, err := p.EncodeCID(pieces.SHA2_256)
				if err != nil {
					b.Fatal(err)
				}
				tx := s.Begin()
				if err := tx.PutPiece(cc, chunk); err != nil {
					b.Fatal(err)
				}
				if err := tx.PutPiece(c, data); err != nil {
					b.Fatal(err)
				}
				tx.Pin(c)
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
