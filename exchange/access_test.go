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
// request carrying the bucket, token and proof the rule wants, refuses the
// others in words the client hears, answers busy when the rule says so,
// and tells the client which bucket it served a piece for.
func TestAccess(t *testing.T) {
	store, cids := newPieces(3, 10_000)
	private, public, viaBucket := cids[0], cids[1], cids[2]
	bucket := bytes.Repeat([]byte{7}, 32)
	var asker peer.ID
	var proofs [][]byte
	var guest bool
	busy := true
	opts := exchange.DefaultServerOptions()
	opts.Access = func(r exchange.AccessRequest) ([]byte, error) {
		p, c, b, token, proof := r.Peer, r.CID, r.Bucket, r.Token, r.Proof
		asker, guest = p, r.Guest
		proofs = append(proofs, proof)
		switch {
		case c == public:
			return nil, nil
		case c == viaBucket && busy:
			busy = false
			return nil, exchange.ErrBusy
		case c == viaBucket:
			return bucket, nil
		case !bytes.Equal(b, bucket) || len(token) == 0:
			return nil, errors.New("not found or not permitted")
		case string(token) != "good" || string(proof) != "proof for "+srvID:
			return nil, errors.New("grant expired\x00\n")
		}
		return bucket, nil
	}
	_, srv, cli := pair(t, store, opts)
	srvID = srv.ID().String()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	get := func(s *exchange.Session, c cid.Cid) ([]byte, error) {
		t.Helper()
		b, via, err := s.Fetch(ctx, c, nil)
		if err == nil && !bytes.Equal(b, store.m[c]) {
			t.Fatalf("%s: other bytes", c)
		}
		return via, err
	}
	bare := dial(t, cli, srv.ID(), 4)
	if _, err := get(bare, private); !errors.Is(err, exchange.ErrDenied) || !strings.Contains(err.Error(), "not found or not permitted") {
		t.Fatalf("private piece without a grant: %v, want a denial with its reason", err)
	}
	if asker != cli.ID() {
		t.Fatalf("the rule was asked for %s, not the requesting peer %s", asker, cli.ID())
	}
	if via, err := get(bare, public); err != nil || via != nil { // a denial leaves the session working
		t.Fatalf("public piece after a denial: %x, %v", via, err)
	}
	if _, err := get(bare, viaBucket); !errors.Is(err, exchange.ErrBusy) {
		t.Fatalf("a piece the rule cannot decide on yet: %v, want busy", err)
	}
	if via, err := get(bare, viaBucket); err != nil || !bytes.Equal(via, bucket) {
		t.Fatalf("a piece served for a public bucket: %x, %v; want that bucket", via, err)
	}
	bad := dial(t, cli, srv.ID(), 4).WithGrant(bucket, []byte("good"), []byte("proof for someone else"))
	_, err := get(bad, private)
	if !errors.Is(err, exchange.ErrDenied) || !strings.Contains(err.Error(), "grant expired??") {
		t.Fatalf("private piece with another holder's proof: %v, want the reason on one printable line", err)
	}
	good := dial(t, cli, srv.ID(), 4).WithGrant(bucket, []byte("good"), []byte("proof for "+srvID))
	if via, err := get(good, private); err != nil || !bytes.Equal(via, bucket) {
		t.Fatalf("private piece with a grant: %x, %v", via, err)
	}

	// A fetcher whose every holder refuses reports the refusal, not "not
	// found", and drops the holder. (A peer of its own: cli holds the
	// streams-per-peer limit.)
	cli = newHost(t)
	connect(t, cli, srv)
	f := newFetcher(t, cli, exchange.FetcherOptions{Grant: &exchange.Grant{Bucket: bucket}})
	defer f.Close()
	f.AddHolders(srv.ID())
	if _, err := f.GetPiece(ctx, private); !errors.Is(err, exchange.ErrDenied) || errors.Is(err, pieces.ErrNotFound) {
		t.Fatalf("fetcher without a grant: %v, want the denial", err)
	}
	if st := f.Stats(); len(st) != 0 {
		t.Fatalf("the fetcher still counts the holder that refused it: %v", st)
	}
	if _, err := f.GetPiece(ctx, public); !errors.Is(err, pieces.ErrNotFound) {
		t.Fatalf("fetcher after its only holder refused: %v, want no holders", err)
	}
	var proved []peer.ID
	g := newFetcher(t, cli, exchange.FetcherOptions{Grant: &exchange.Grant{Bucket: bucket, Token: []byte("good"),
		Prove: func(p peer.ID) ([]byte, error) {
			proved = append(proved, p)
			return []byte("proof for " + p.String()), nil
		}}})
	defer g.Close()
	g.AddHolders(srv.ID())
	if data, via, err := g.Fetch(ctx, private, nil); err != nil || !bytes.Equal(data, store.m[private]) || !bytes.Equal(via, bucket) {
		t.Fatalf("fetcher with a grant: %x, %v", via, err)
	}
	if len(proved) != 1 || proved[0] != srv.ID() || guest {
		t.Fatalf("proofs made for %v, want one for the holder %s; for a guest: %v", proved, srv.ID(), guest)
	}
	// Reads for a gateway's client say so, through a pool too.
	pool := exchange.NewPool(cli, "default", 0)
	defer pool.Close()
	gs, release, err := pool.Session(ctx, srv.ID(), &exchange.Grant{Guest: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(gs, public); err != nil || !guest {
		t.Fatalf("a guest's read: %v; the rule saw guest %v", err, guest)
	}
	release()
	if _, err := exchange.NewFetcher(cli, exchange.FetcherOptions{Cluster: "default", Grant: &exchange.Grant{Bucket: []byte{1}}}); err == nil {
		t.Fatal("a fetcher took a 1-byte bucket ID")
	}
	if _, err := exchange.NewFetcher(cli, exchange.FetcherOptions{Cluster: "default", Grant: &exchange.Grant{Bucket: bucket, Token: make([]byte, exchange.MaxToken+1)}}); err == nil {
		t.Fatal("a fetcher took an oversized token")
	}
}

// srvID is the server's peer ID in TestAccess, for its rule.
var srvID string
