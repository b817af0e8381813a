package exchange_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/exchange"
	"github.com/ddc-project/ddc/pieces"
)

// TestAccess: a server with an access rule serves a private piece only to a
// request carrying the bucket and token the rule wants, refuses the others
// in words the client hears, and tells a 1.0.0 peer it has no such piece.
func TestAccess(t *testing.T) {
	store, cids := newPieces(2, 10_000)
	private, public := cids[0], cids[1]
	bucket := bytes.Repeat([]byte{7}, 32)
	var asker peer.ID
	opts := exchange.DefaultServerOptions()
	opts.Access = func(p peer.ID, c cid.Cid, b, token []byte) error {
		asker = p
		switch {
		case c != private:
			return nil
		case !bytes.Equal(b, bucket) || len(token) == 0:
			return errors.New("bucket B is private: no grant")
		case string(token) != "good":
			return errors.New("grant expired at noon\x00\n")
		}
		return nil
	}
	_, srv, cli := pair(t, store, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	get := func(s *exchange.Session, c cid.Cid) error {
		t.Helper()
		b, err := s.Get(ctx, c)
		if err == nil && !bytes.Equal(b, store.m[c]) {
			t.Fatalf("%s: other bytes", c)
		}
		return err
	}
	bare := dial(t, cli, srv.ID(), 4)
	if err := get(bare, private); !errors.Is(err, exchange.ErrDenied) || !strings.Contains(err.Error(), "bucket B is private: no grant") {
		t.Fatalf("private piece without a grant: %v, want a denial with its reason", err)
	}
	if asker != cli.ID() {
		t.Fatalf("the rule was asked for %s, not the requesting peer %s", asker, cli.ID())
	}
	if err := get(bare, public); err != nil { // a denial leaves the session working
		t.Fatalf("public piece after a denial: %v", err)
	}
	bad := dial(t, cli, srv.ID(), 4).WithGrant(bucket, []byte("stale"))
	err := get(bad, private)
	if !errors.Is(err, exchange.ErrDenied) || !strings.Contains(err.Error(), "grant expired at noon??") {
		t.Fatalf("private piece with a bad grant: %v, want the reason on one printable line", err)
	}
	good := dial(t, cli, srv.ID(), 4).WithGrant(bucket, []byte("good"))
	if err := get(good, private); err != nil {
		t.Fatalf("private piece with a grant: %v", err)
	}

	old, err := exchange.DialV1ForTest(ctx, cli, srv.ID(), "default")
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := get(old, public); err != nil {
		t.Fatalf("1.0.0 peer, public piece: %v", err)
	}
	if err := get(old, private); !errors.Is(err, pieces.ErrNotFound) {
		t.Fatalf("1.0.0 peer, private piece: %v, want not found", err)
	}

	// A fetcher whose every holder refuses reports the refusal, not "not
	// found". (A peer of its own: cli holds the streams-per-peer limit.)
	cli = newHost(t)
	connect(t, cli, srv)
	f := newFetcher(t, cli, exchange.FetcherOptions{Bucket: bucket})
	defer f.Close()
	f.AddHolders(srv.ID())
	if _, err := f.GetPiece(ctx, private); !errors.Is(err, exchange.ErrDenied) || errors.Is(err, pieces.ErrNotFound) {
		t.Fatalf("fetcher without a grant: %v, want the denial", err)
	}
	g := newFetcher(t, cli, exchange.FetcherOptions{Bucket: bucket, Token: []byte("good")})
	defer g.Close()
	g.AddHolders(srv.ID())
	if _, err := g.GetPiece(ctx, private); err != nil {
		t.Fatalf("fetcher with a grant: %v", err)
	}
	if _, err := exchange.NewFetcher(cli, exchange.FetcherOptions{Cluster: "default", Bucket: []byte{1}}); err == nil {
		t.Fatal("a fetcher took a 1-byte bucket ID")
	}
}
