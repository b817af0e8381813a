package integration

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/exchange"
	"github.com/ddc-project/ddc/internal/p2ptest"
	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/search"
)

// heard is what a rogue peer collected from one request.
type heard struct {
	bucket, token, proof []byte
	guest                bool
}

// rogue is a peer that poses as a holder of a file and of its bucket:
// it announces both in the DHT, refuses every exchange and search
// request it gets, and keeps what they carried.
type rogue struct {
	mu       sync.Mutex
	requests []heard
	pieces   int // exchange requests
}

func (r *rogue) keep(h heard, piece bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, h)
	if piece {
		r.pieces++
	}
}

func startRogue(t *testing.T, boot *node.Node, announce ...cid.Cid) (*rogue, host.Host) {
	t.Helper()
	r := &rogue{}
	h := p2ptest.NewHost(t)
	so := exchange.DefaultServerOptions()
	so.Access = func(a exchange.AccessRequest) ([]byte, error) {
		r.keep(heard{bytes.Clone(a.Bucket), bytes.Clone(a.Token), bytes.Clone(a.Proof), a.Guest}, true)
		return nil, errors.New("denied")
	}
	srv, err := exchange.NewServer(h, memPieces{}, so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ss := search.NewServer(h, "default", func(context.Context, []byte, search.Query, []byte, int) (search.Page, error) {
		return search.Page{}, nil
	}, func(_ peer.ID, req search.Request) error {
		r.keep(heard{bytes.Clone(req.Bucket), bytes.Clone(req.Token), bytes.Clone(req.Proof), req.Guest}, false)
		return errors.New("denied")
	}, nil)
	t.Cleanup(func() { ss.Close() })
	announceFrom(t, h, boot, announce...)
	return r, h
}

// TestRoguePeerGetsNothing: while a grant holder reads a private file
// through a gateway, a peer that poses as a holder of the file and of its
// bucket and refuses everything receives only what it cannot use: none
// of it reads the file from its owner, over the exchange or a search;
// and the reader does not count it as a holder.
func TestRoguePeerGetsNothing(t *testing.T) {
	owner := startNode(t, nil)
	rec, key := privateBucket(t, owner, "")
	data := make([]byte, 6<<20)
	io.ReadFull(content(91, int64(len(data))), data)
	opt := pieces.DefaultBuildOptions()
	tag, _ := pieces.ParseTag("file-path=/r/file.bin")
	opt.Tags = append(opt.Tags, tag)
	res, err := owner.PutIn(context.Background(), bytes.NewReader(data), opt, &node.In{Bucket: rec.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	gwNode := startNode(t, nil, owner)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitFor(t, "the owner to publish its bucket", 30*time.Second, func() bool {
		_, err := owner.PublishBucket(ctx, rec.Bucket)
		return err == nil
	})
	rg, rp := startRogue(t, owner, res.Root, bucket.HoldersKey(rec.Bucket))
	if err := gwNode.Connect(ctx, peer.AddrInfo{ID: rp.ID(), Addrs: rp.Addrs()}); err != nil {
		t.Fatal(err)
	}
	bearer, err := bucket.NewGrant(key, rec.Bucket, nil, bucket.OpGet, time.Now().Add(time.Hour), false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	in := &node.In{Bucket: rec.Bucket, Token: bearer.String(), Guest: true}

	// A read for a gateway client, as the gateway makes it.
	rd, err := gwNode.OpenIn(ctx, res.Root, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rd)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the read for a grant holder: %d bytes, %v", len(got), err)
	}
	known, _ := rd.Holders()
	if _, ok := rd.Stats()[rp.ID()]; ok || known != 1 {
		t.Fatalf("the reader counts %d holders, the rogue among them: %v; want the owner alone", known, ok)
	}
	rd.Close()
	// And through the gateway itself, by path: a search of the bucket's
	// holders, the rogue among them.
	_, base := serveGateway(t, gwNode, gatewayOptions())
	a := request(t, "GET", base+"/ddc/buc/"+rec.Bucket.String()+"/path/r/file.bin", "Authorization", "Bearer "+bearer.String())
	if a.status != 200 || !bytes.Equal(a.body, data) {
		t.Fatalf("the path through the gateway: %d, %d bytes", a.status, len(a.body))
	}

	rg.mu.Lock()
	heardAll, pieceRequests := append([]heard(nil), rg.requests...), rg.pieces
	rg.mu.Unlock()
	if pieceRequests == 0 || len(heardAll) == pieceRequests {
		t.Fatalf("the rogue heard %d piece requests and %d searches: the test wants both", pieceRequests, len(heardAll)-pieceRequests)
	}
	owners := owner.ID()
	for i, h := range heardAll {
		if len(h.token) == 0 {
			continue // a probe: it carries no grant
		}
		if strings.Contains(string(h.token), ".") || string(h.token) != bearer.Chain() || !h.guest {
			t.Fatalf("request %d to the rogue carried %q (guest %v): want the grant's chain alone, marked for a guest", i, h.token, h.guest)
		}
		// What it heard, used at the owner's node: refused.
		for _, guest := range []bool{false, true} {
			sess, err := exchange.Dial(ctx, rp, owners, "default", 0)
			if err != nil {
				t.Fatal(err)
			}
			sess.WithGrant(h.bucket, h.token, h.proof)
			if guest {
				sess.ForGuest()
			}
			if _, err := sess.Get(ctx, res.Root); !errors.Is(err, exchange.ErrDenied) {
				t.Fatalf("the rogue replaying request %d (guest %v) at the owner: %v, want a refusal", i, guest, err)
			}
			sess.Close()
			q, _ := search.Parse([]string{"file-path"})
			req := search.NewRequest(h.bucket, h.token, q, nil, 10)
			req.Proof, req.Guest = h.proof, guest
			if _, err := search.Ask(ctx, rp, "default", owners, req); !errors.As(err, new(*search.DeniedError)) {
				t.Fatalf("the rogue replaying request %d as a search at the owner: %v, want a refusal", i, err)
			}
		}
	}
}
