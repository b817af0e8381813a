package integration

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/files"
	boxogw "github.com/ipfs/boxo/gateway"
	"github.com/ipfs/boxo/ipld/merkledag"
	ufile "github.com/ipfs/boxo/ipld/unixfs/file"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
)

// serialBlockstore lets one call at a time into boxo's remote blockstore:
// in v0.41.0 it picks a gateway with a math/rand.Rand that is not safe for
// concurrent use, and ddc's reader and merkledag both fetch in parallel.
type serialBlockstore struct {
	blockstore.Blockstore
	mu *sync.Mutex
}

func (s serialBlockstore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Blockstore.Get(ctx, c)
}

func (s serialBlockstore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Blockstore.Has(ctx, c)
}

func (s serialBlockstore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Blockstore.GetSize(ctx, c)
}

// remoteGetter reads pieces from a boxo blockstore: a ddc reader over
// what an IPFS client fetched.
type remoteGetter struct{ bs blockstore.Blockstore }

func (g remoteGetter) GetPiece(ctx context.Context, c cid.Cid) ([]byte, error) {
	b, err := g.bs.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	return b.RawData(), nil
}

// TestTrustlessBoxoClient: a Go client built on boxo/gateway's remote
// blockstore (raw block requests, each block checked against its CID)
// fetches and verifies a ddc file and a UnixFS directory from a node's
// gateway over HTTP.
func TestTrustlessBoxoClient(t *testing.T) {
	d := newTrustlessDAGs(t)
	ctx := context.Background()
	remote, err := boxogw.NewRemoteBlockstore([]string{d.base[:len(d.base)-len("/ipfs/")]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bs := serialBlockstore{remote, new(sync.Mutex)}
	dag := merkledag.NewDAGService(blockservice.New(bs, offline.Exchange(bs)))

	// The UnixFS directory, file by file, through boxo's UnixFS reader.
	nd, err := dag.Get(ctx, d.dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ufile.NewUnixfsFile(ctx, dag, nd)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	err = files.Walk(f, func(p string, n files.Node) error {
		if file, ok := n.(files.File); ok {
			b, err := io.ReadAll(file)
			if err != nil {
				return err
			}
			got[p] = b
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got["hello.txt"]) != "hello, trustless world\n" || !bytes.Equal(got["sub/big.bin"], d.data) {
		t.Fatalf("the directory read back as %d files: %q", len(got), keys(got))
	}

	// A ddc file (DAG-CBOR descriptors over raw chunks), put by the node
	// and read by ddc's reader over the blocks the client verified.
	data := make([]byte, 3<<20+123)
	io.ReadFull(content(31, int64(len(data))), data)
	c := putTagged(t, d.n, data)
	rf, err := pieces.Open(ctx, remoteGetter{bs}, c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(rf)
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("the ddc file read back %d of %d bytes: %v", len(back), len(data), err)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
