package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/internal/p2ptest"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
)

func startNode(t *testing.T) *Node {
	t.Helper()
	path := filepath.Join(t.TempDir(), "repo")
	if _, err := repo.Init(path, p2ptest.NodeConfig()); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Start(r, Options{FindTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// A shared read waiting on a fetch that another read leads, and fails
// with holders of its own (none, here), fetches the piece from its own
// holders and reads on.
func TestSharedReadOutlivesAFailedLeader(t *testing.T) {
	holder, getter := startNode(t), startNode(t)
	data := make([]byte, 8<<20)
	rand.NewChaCha8([32]byte{9}).Read(data)
	res, err := holder.Put(context.Background(), bytes.NewReader(data), pieces.DefaultBuildOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := getter.Connect(ctx, peer.AddrInfo{ID: holder.ID(), Addrs: holder.Addrs()}); err != nil {
		t.Fatal(err)
	}
	root, err := holder.repo.Store.GetPiece(ctx, res.Root)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pieces.Decode(res.Root, root)
	if err != nil {
		t.Fatal(err)
	}
	guest := &In{Guest: true}
	f, leader := getter.flights.join(flightKey(p.Links[5].CID, guest)) // a leader that will fail
	if !leader {
		t.Fatal("no flight yet, and not its leader")
	}
	got := make(chan error, 1)
	go func() {
		// The Reader closes before the answer goes, so the test's end
		// (the nodes' Close) never meets its last commit.
		r := getter.NewReaderIn(res.Root, guest)
		r.Share()
		err := r.Open(ctx)
		if err == nil {
			var b []byte
			b, err = io.ReadAll(r)
			if err == nil && !bytes.Equal(b, data) {
				err = io.ErrUnexpectedEOF
			}
		}
		got <- errors.Join(err, r.Close())
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		getter.flights.mu.Lock()
		waiting := f.waiters
		getter.flights.mu.Unlock()
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the read never waited on the flight")
		}
		time.Sleep(time.Millisecond) // polling for the read to join, with a deadline
	}
	getter.flights.finish(f, nil, &pieces.NotFoundError{CID: p.Links[5].CID})
	if err := <-got; err != nil {
		t.Fatalf("the read that waited on a failed leader: %v", err)
	}
}
