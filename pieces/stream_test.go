package pieces_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"golang.org/x/sync/semaphore"

	"github.com/ddc-project/ddc/pieces"
)

// countingGetter counts the data pieces fetched and the most in flight.
type countingGetter struct {
	pieces.Getter
	mu                   sync.Mutex
	gets, inFlight, most int
	fetched              map[cid.Cid]int
	gate                 chan struct{} // when set, each fetch waits on it
	latency              time.Duration // each fetch takes this long, as over a network
}

func (g *countingGetter) GetPiece(ctx context.Context, c cid.Cid) ([]byte, error) {
	if c.Type() == pieces.CodecRaw {
		g.mu.Lock()
		g.gets++
		g.inFlight++
		g.most = max(g.most, g.inFlight)
		if g.fetched == nil {
			g.fetched = make(map[cid.Cid]int)
		}
		g.fetched[c]++
		g.mu.Unlock()
		defer func() { g.mu.Lock(); g.inFlight--; g.mu.Unlock() }()
		if g.gate != nil {
			select {
			case <-g.gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if g.latency > 0 {
			t := time.NewTimer(g.latency)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	return g.Getter.GetPiece(ctx, c)
}

func (g *countingGetter) counts() (gets, most int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gets, g.most
}

func TestReadRandomSeeks(t *testing.T) {
	opt := pieces.DefaultBuildOptions()
	opt.ChunkSize, opt.Inline, opt.MaxLinks = 700, 50, 3
	data := randBytes(11, 30_000)
	s := newMemStore()
	root := build(t, s, data, opt).Root
	for _, g := range []pieces.Getter{s, readerStore{s}} {
		f := mustOpen(t, g, root)
		r := rand.New(rand.NewPCG(5, 6))
		for range 300 {
			off := r.IntN(len(data) + 5)
			if r.IntN(3) > 0 { // mostly seek; sometimes read on in order
				f.Seek(int64(off), io.SeekStart)
			}
			pos, _ := f.Seek(0, io.SeekCurrent)
			buf := make([]byte, r.IntN(2500))
			n, err := io.ReadFull(f, buf)
			want := data[min(int(pos), len(data)):min(len(data), int(pos)+len(buf))]
			if !bytes.Equal(buf[:n], want) || (err != nil && n == len(buf)) {
				t.Fatalf("read %d at %d = %d, %v; want %d bytes", len(buf), pos, n, err, len(want))
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A read after a seek fetches the chunk it needs, nothing ahead; reading
// on in order faster than the chunks arrive soon has more of them in
// flight, up to ReadAhead, fetches each chunk once, and the end of the
// file stops the stream.
func TestReadAheadGrows(t *testing.T) {
	s, data, root := kibChunks(t, 12, 64*1024)
	g := &countingGetter{Getter: s}
	f := mustOpen(t, g, root)
	f.ReadAhead = 4
	f.Seek(10*1024+100, io.SeekStart)
	buf := make([]byte, 200)
	if _, err := io.ReadFull(f, buf); err != nil || !bytes.Equal(buf, data[10*1024+100:10*1024+300]) {
		t.Fatalf("short read after seek: %v", err)
	}
	f.Close()
	if gets, _ := g.counts(); gets != 1 {
		t.Fatalf("a 200-byte read inside one chunk fetched %d chunks, want 1", gets)
	}

	g = &countingGetter{Getter: s, latency: 2 * time.Millisecond} // a reader faster than the network
	f = mustOpen(t, g, root)
	f.ReadAhead = 4
	var out bytes.Buffer
	small := make([]byte, 300)
	for {
		n, err := f.Read(small)
		out.Write(small[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("reading in order gave other bytes")
	}
	gets, most := g.counts()
	if gets != 64 {
		t.Fatalf("reading 64 chunks in order fetched %d", gets)
	}
	if most < 3 || most > f.ReadAhead+1 {
		t.Fatalf("%d chunks in flight at most, want 3..%d: a reader that waits on the network gets a deeper window", most, f.ReadAhead+1)
	}
}

// A reader slower than the fetches keeps the next chunk in flight and no
// more, however deep ReadAhead is: the window follows what it consumes.
func TestReadAheadFollowsReader(t *testing.T) {
	s, data, root := kibChunks(t, 16, 32*1024)
	g := &countingGetter{Getter: s}
	f := mustOpen(t, g, root)
	defer f.Close()
	f.ReadAhead = 16
	var out bytes.Buffer
	chunk := make([]byte, 1024)
	for k := 0; ; k++ {
		// Slow: each chunk is read only once the fetches begun for it are
		// over, so the reader never waits for one.
		deadline := time.Now().Add(10 * time.Second)
		for k > 0 {
			gets, _ := g.counts()
			g.mu.Lock()
			idle := g.inFlight == 0
			g.mu.Unlock()
			if idle && (gets > k || gets == 32) {
				for range 100 {
					runtime.Gosched() // and its check, after the getter returned
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("chunk %d: no fetch for it within 10s (%d fetched)", k, gets)
			}
			runtime.Gosched()
		}
		n, err := io.ReadFull(f, chunk)
		out.Write(chunk[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		// The next chunk ahead, and maybe a chunk or two more for the
		// rare time the reader got to a chunk a moment before its check
		// was over: far from ReadAhead.
		if gets, _ := g.counts(); gets > k+4 {
			t.Fatalf("a slow reader that has read %d chunks: %d fetched; want the next one ahead, not ReadAhead", k+1, gets)
		}
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("a slow reader read other bytes")
	}
	if gets, _ := g.counts(); gets != 32 {
		t.Fatalf("a slow reader of 32 chunks: %d fetched", gets)
	}
}

// Under a Budget the chunks in flight across Files never exceed it, and
// every reader still finishes.
func TestReadBudget(t *testing.T) {
	s, data, root := kibChunks(t, 13, 40*1024)
	g := &countingGetter{Getter: s}
	budget := semaphore.NewWeighted(3 * 1024)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			f := mustOpen(t, g, root)
			defer f.Close()
			f.ReadAhead, f.Budget = 8, budget
			got, err := io.ReadAll(f)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("read under a budget: %d bytes, %v", len(got), err)
			}
		})
	}
	wg.Wait()
	if _, most := g.counts(); most > 3 {
		t.Fatalf("%d chunks in flight under a budget of 3", most)
	}
	if !budget.TryAcquire(3 * 1024) {
		t.Fatal("readers did not give their budget back")
	}
}

// Closing a File in the middle of a read-ahead stops its fetches.
func TestCloseStopsReadAhead(t *testing.T) {
	s, data, root := kibChunks(t, 14, 32*1024)
	g := &countingGetter{Getter: s, gate: make(chan struct{})}
	f := mustOpen(t, g, root)
	f.ReadAhead = 8
	stop := g.open()
	buf := make([]byte, 1500)
	if _, err := io.ReadFull(f, buf); err != nil {
		t.Fatal(err)
	}
	stop()
	f.Close() // fetches held at the gate end with the stream; goleak checks
	defer g.open()()
	if _, err := io.ReadFull(f, buf[:100]); err != nil || !bytes.Equal(buf[:100], data[1500:1600]) { // a later read starts again
		t.Fatalf("read after Close: %v", err)
	}
	f.Close()
}

// open lets fetches through the gate until the returned func is called.
func (g *countingGetter) open() (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case g.gate <- struct{}{}:
			case <-done:
				return
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// Blocks lists each block once, descriptors before what they link to,
// and for a range only the blocks that hold it: put back together, they
// read as the file's bytes.
func TestBlocks(t *testing.T) {
	opt := pieces.DefaultBuildOptions()
	opt.ChunkSize, opt.Inline, opt.MaxLinks = 700, 50, 3
	data := randBytes(15, 20_000)
	s := newMemStore()
	root := build(t, s, data, opt).Root
	f := mustOpen(t, s, root)
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 100 {
		from, to := int64(r.IntN(len(data))), int64(r.IntN(len(data)+100))
		if i == 0 {
			from, to = 0, int64(len(data))
		}
		got := newMemStore()
		seen := map[cid.Cid]bool{}
		err := f.Blocks(from, to, func(c cid.Cid, b []byte) error {
			if seen[c] {
				t.Fatalf("block %s twice", c)
			}
			if c != root && c.Type() == pieces.CodecRaw && len(seen) == 0 {
				t.Fatal("a data piece before the root")
			}
			seen[c] = true
			return got.PutPiece(c, b)
		})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && len(got.m) != len(s.m) {
			t.Fatalf("the whole range gave %d blocks of %d", len(got.m), len(s.m))
		}
		sub := mustOpen(t, got, root)
		if from < to {
			buf := make([]byte, min(to, int64(len(data)))-from)
			if _, err := sub.ReadAt(buf, from); err != nil || !bytes.Equal(buf, data[from:from+int64(len(buf))]) {
				t.Fatalf("blocks of [%d, %d) do not hold it: %v", from, to, err)
			}
		}
		if len(got.m) > 2*int(max(to-from, 0))/700+2*3+8 {
			t.Fatalf("[%d, %d) gave %d blocks, more than it needs", from, to, len(got.m))
		}
	}
}

// kibChunks builds size seeded bytes in 1 KiB chunks with nothing inline.
func kibChunks(t *testing.T, seed uint64, size int) (*memStore, []byte, cid.Cid) {
	t.Helper()
	opt := pieces.DefaultBuildOptions()
	opt.ChunkSize, opt.Inline = 1024, 0
	data := randBytes(seed, size)
	s := newMemStore()
	return s, data, build(t, s, data, opt).Root
}
