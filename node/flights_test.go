package node_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/pieces"
)

// pair starts a holder of size random bytes and a getter connected to it.
func pair(t *testing.T, size int) (holder, getter *node.Node, root pieces.BuildResult, data []byte) {
	t.Helper()
	holder = start(t, filepath.Join(t.TempDir(), "holder"))
	t.Cleanup(func() { holder.Close() })
	data = make([]byte, size)
	rand.NewChaCha8([32]byte{7}).Read(data)
	res, err := holder.Put(context.Background(), bytes.NewReader(data), pieces.DefaultBuildOptions())
	if err != nil {
		t.Fatal(err)
	}
	getter = start(t, filepath.Join(t.TempDir(), "getter"))
	t.Cleanup(func() { getter.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := getter.Connect(ctx, peer.AddrInfo{ID: holder.ID(), Addrs: holder.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return holder, getter, res, data
}

// Two overlapping open-ended range reads of a file the node lacks, as a
// player's, fetch each piece once: one joins the other's fetches, or
// takes what the other fetched and has yet to commit.
func TestOverlappingReadsFetchEachPieceOnce(t *testing.T) {
	const size = 24 << 20
	_, getter, res, data := pair(t, size)
	guest := &node.In{Guest: true}
	var wg sync.WaitGroup
	for _, from := range []int64{0, 6 << 20} {
		wg.Go(func() {
			r := getter.NewReaderIn(res.Root, guest)
			r.Share()
			defer r.Close()
			if err := r.Open(context.Background()); err != nil {
				t.Error(err)
				return
			}
			if _, err := r.Seek(from, io.SeekStart); err != nil {
				t.Error(err)
				return
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data[from:]) {
				t.Errorf("read from %d: %d bytes, %v", from, len(got), err)
			}
		})
	}
	wg.Wait()
	if f := getter.Fetched(); f > size+(64<<10) {
		t.Fatalf("two overlapping reads of a %d-byte file fetched %d bytes: pieces fetched twice", size, f)
	}
}

// A read cancelled part way stops fetching within one read-ahead window.
func TestCancelledReadStopsFetching(t *testing.T) {
	const size = 96 << 20
	_, getter, res, _ := pair(t, size)
	ctx, cancel := context.WithCancel(context.Background())
	r := getter.NewReaderIn(res.Root, &node.In{Guest: true})
	r.Share()
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	var read int64
	for read < 8<<20 {
		n, err := r.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		read += int64(n)
	}
	cancel()
	r.Close()
	window := int64(node.DefaultReadAhead+1) << 20
	if f := int64(getter.Fetched()); f > read+window {
		t.Fatalf("a read cancelled after %d bytes fetched %d: more than one %d-byte window past it", read, f, window)
	}
}
