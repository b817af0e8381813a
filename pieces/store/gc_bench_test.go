package store_test

import (
	"encoding/binary"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
)

// BenchmarkGC1M: a store of 100,000 files of ten pieces each (1,000,000
// pieces; DDC_BENCH_FILES=N for another count), a quarter of them
// pinned, collected while 64 KiB reads of pinned pieces (2,000 a
// second) and small puts (500 a second) go on. It reports the GC's duration, the reads' p99 during GC against
// the same reads with no GC in the same run, and the longest put.
func BenchmarkGC1M(b *testing.B) {
	files := 100_000
	if v, err := strconv.Atoi(os.Getenv("DDC_BENCH_FILES")); err == nil && v > 0 {
		files = v
	}
	for range b.N {
		b.StopTimer()
		s := open(b, b.TempDir(), 0, false)
		var reads []cid.Cid
		start := time.Now()
		chunk := make([]byte, 64<<10)
		for f := range files {
			tx := s.Begin()
			var links []pieces.Link
			for i := range 9 {
				data := chunk[:256]
				if f%4 == 0 && i == 0 {
					data = chunk // one 64 KiB piece a pinned file, to read
				}
				binary.BigEndian.PutUint64(data, uint64(f*10+i))
				c := mustSum(b, pieces.CodecRaw, data)
				if err := tx.PutPiece(c, data); err != nil {
					b.Fatal(err)
				}
				links = append(links, pieces.Link{CID: c, Size: uint64(len(data))})
			}
			desc, err := (&pieces.Piece{Links: links}).Encode()
			if err != nil {
				b.Fatal(err)
			}
			root := mustSum(b, pieces.CodecDagCBOR, desc)
			if err := tx.PutPiece(root, desc); err != nil {
				b.Fatal(err)
			}
			if f%4 == 0 {
				tx.Pin(root)
				reads = append(reads, links[0].CID)
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		b.Logf("%d files, %d pieces built in %v", files, files*10, time.Since(start).Round(time.Second))

		var stop atomic.Bool
		var worst atomic.Int64
		var wg sync.WaitGroup
		puts := func(from int) {
			wg.Go(func() { // small puts, 500 a second
				tick := time.NewTicker(2 * time.Millisecond)
				defer tick.Stop()
				for n := from; !stop.Load(); n++ {
					<-tick.C
					t0 := time.Now()
					tx := s.Begin()
					data := binary.BigEndian.AppendUint64([]byte("put beside gc "), uint64(n))
					tx.PutPiece(mustSum(b, pieces.CodecRaw, data), data)
					tx.Commit()
					if d := int64(time.Since(t0)); d > worst.Load() {
						worst.Store(d)
					}
				}
			})
		}
		puts(0) // with no GC: the baseline
		quiet := readLatencies(b, s, reads, nil)
		stop.Store(true)
		wg.Wait()
		quietPut := time.Duration(worst.Load())
		stop.Store(false)
		worst.Store(0)
		puts(1 << 30)
		busy := make(chan []time.Duration)
		go func() { busy <- readLatencies(b, s, reads, &stop) }()
		b.StartTimer()
		res, err := s.GC(ctx)
		b.StopTimer()
		stop.Store(true)
		during := <-busy
		wg.Wait()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.Duration.Seconds(), "gc-s")
		b.ReportMetric(float64(res.Removed), "removed")
		b.ReportMetric(ms(p99(quiet)), "read-p99-quiet-ms")
		b.ReportMetric(ms(p99(during)), "read-p99-gc-ms")
		b.ReportMetric(ms(time.Duration(worst.Load())), "put-max-ms")
		b.ReportMetric(ms(quietPut), "put-max-quiet-ms")
		b.Logf("GC of %d pieces: %v, %d removed; 64 KiB read p99 %.2f ms during it (%d reads), %.2f ms without; longest put %.1f ms during it, %.1f ms without",
			files*10, res.Duration.Round(time.Millisecond), res.Removed, ms(p99(during)), len(during), ms(p99(quiet)), ms(time.Duration(worst.Load())), ms(quietPut))
		s.Close()
	}
}

// readLatencies reads the pieces of cs in turn, 2,000 a second: 2,000 of
// them, or until stop is set when it is not nil, and returns each read's
// time.
func readLatencies(b *testing.B, s *store.Store, cs []cid.Cid, stop *atomic.Bool) []time.Duration {
	var ds []time.Duration
	buf := make([]byte, 0, 64<<10)
	tick := time.NewTicker(500 * time.Microsecond) // 2,000 a second, 125 MiB/s
	defer tick.Stop()
	for i := 0; stop == nil && i < 2000 || stop != nil && !stop.Load(); i++ {
		<-tick.C
		t0 := time.Now()
		var err error
		if buf, err = s.ReadPiece(ctx, cs[i%len(cs)], buf); err != nil {
			b.Errorf("read of a pinned piece: %v", err)
			return ds
		}
		ds = append(ds, time.Since(t0))
	}
	return ds
}

func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)*99/100]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func mustSum(_ testing.TB, codec uint64, data []byte) cid.Cid {
	return pieces.DefaultHash.Sum(codec, data)
}
