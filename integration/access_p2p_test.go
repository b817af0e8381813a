package integration

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/exchange"
	ddcrepo "github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/search"
)

// p2pGrant is what a peer's requests carry.
type p2pGrant struct {
	name         string
	bucket       []byte
	token, proof []byte
	guest        bool
	reads        bool // the holder serves it
}

// TestPeerAccess: every exchange request kind (a whole piece, a range, the
// one-byte probe) and a search, sent straight to two holders of a private
// file: its owner's node and a node that read it with a grant. A peer
// reads only with a grant bound to its own key (its connection proves
// it), or a bearer grant's chain with a proof made for the holder asked;
// no grant, a tampered one, another bucket's, put-only, expired, bound to
// another key, a bearer chain without a proof or with a proof made for
// another holder, the whole bearer token sent as it is, and a grant bound
// to the peer marked as for a client of its own: all refused in words
// that name no bucket, no holder and nothing of the file.
func TestPeerAccess(t *testing.T) {
	owner := startDaemon(t, newDaemonRepo(t))
	reader := startDaemon(t, newDaemonRepo(t), "--bootstrap", owner.tcpAddr())
	s := putSecret(t, owner)
	bearerText := strings.TrimSpace(owner.ok(nil, "bucket", "grant", s.bucket, "--bearer"))
	reader.ok(nil, "get", "-b", s.bucket, "--token", bearerText, "-o", t.TempDir()+"/got", s.root)

	h, _, ctx := dialDaemon(t, owner)
	if _, _, err := dialOn(ctx, h, reader); err != nil {
		t.Fatal(err)
	}
	me, err := ddcrepo.AccountOfPeer(h.ID())
	if err != nil {
		t.Fatal(err)
	}
	parse := func(text string) bucket.Token {
		tok, err := bucket.ParseToken(text)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	bearer := parse(bearerText)
	prove := func(tok bucket.Token, holder peer.ID) []byte {
		sig, err := bucket.Prove(*tok.Key, s.id, []byte(holder), []byte(h.ID()))
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	mine := strings.TrimSpace(owner.ok(nil, "bucket", "grant", s.bucket, "--to", me.String()))

	for _, holder := range []*daemon{owner, reader} {
		hp, err := peer.Decode(holder.state.PeerID)
		if err != nil {
			t.Fatal(err)
		}
		other := reader
		if holder == reader {
			other = owner
		}
		op, _ := peer.Decode(other.state.PeerID)
		grants := []p2pGrant{
			{name: "the grant bound to this peer", bucket: s.id[:], token: []byte(mine), reads: true},
			{name: "a bearer grant with a proof for this holder", bucket: s.id[:], token: []byte(bearer.Chain()), proof: prove(bearer, hp), reads: true},
			{name: "the grant bound to this peer, for a client of its own", bucket: s.id[:], token: []byte(mine), guest: true},
			{name: "a bearer grant without a proof", bucket: s.id[:], token: []byte(bearer.Chain())},
			{name: "a bearer grant with a proof for another holder", bucket: s.id[:], token: []byte(bearer.Chain()), proof: prove(bearer, op)},
			{name: "the whole bearer token", bucket: s.id[:], token: []byte(bearerText)},
			{name: "no bucket"},
			{name: "the bucket, no grant", bucket: s.id[:]},
		}
		for _, b := range s.badGrants(t) {
			if b.token == "" {
				continue
			}
			tok := parse(b.token)
			g := p2pGrant{name: b.name, bucket: s.id[:], token: []byte(tok.Chain())}
			if tok.Key != nil {
				g.proof = prove(tok, hp)
			}
			grants = append(grants, g)
		}
		for _, g := range grants {
			what := g.name + ", asking " + holder.path
			sess, err := exchange.Dial(ctx, h, hp, "default", 0)
			if err != nil {
				t.Fatal(err)
			}
			sess.WithGrant(g.bucket, g.token, g.proof)
			if g.guest {
				sess.ForGuest()
			}
			kinds := map[string]func() error{
				"the descriptor": func() error { _, err := sess.Get(ctx, mustCID(t, s.root)); return err },
				"a chunk":        func() error { _, err := sess.Get(ctx, mustCID(t, s.chunk)); return err },
				"a range":        func() error { _, err := sess.GetRangeUnverified(ctx, mustCID(t, s.chunk), 100, 1000); return err },
				"the probe":      func() error { _, err := sess.GetRangeUnverified(ctx, mustCID(t, s.root), 0, 1); return err },
			}
			for kind, do := range kinds {
				err := do()
				if g.reads != (err == nil) {
					t.Fatalf("%s, %s: %v; want a read: %v", what, kind, err, g.reads)
				}
				if err != nil {
					checkRefusal(t, what+", "+kind, s, err, holder, other)
				}
			}
			sess.Close()
			q, _ := search.Parse([]string{"note"})
			req := search.NewRequest(g.bucket, g.token, q, nil, 10)
			req.Proof, req.Guest = g.proof, g.guest
			if len(g.bucket) == 0 {
				req.Bucket = make([]byte, 32) // the search protocol wants one: the space of no bucket
			}
			page, err := search.Ask(ctx, h, "default", hp, req)
			switch {
			case g.reads && (err != nil || len(page.Results) != 1 || page.Results[0].CID.String() != s.root):
				t.Fatalf("%s, a search: %+v, %v; want the file", what, page, err)
			case !g.reads && (err == nil || len(page.Results) != 0):
				t.Fatalf("%s, a search: %d results, %v; want a refusal", what, len(page.Results), err)
			case !g.reads:
				checkRefusal(t, what+", a search", s, err, holder, other)
			}
		}
	}
}

// dialOn connects h to daemon d.
func dialOn(ctx context.Context, h host.Host, d *daemon) (peer.ID, *peer.AddrInfo, error) {
	ai, err := peer.AddrInfoFromString(d.tcpAddr())
	if err != nil {
		return "", nil, err
	}
	return ai.ID, ai, h.Connect(ctx, *ai)
}

// checkRefusal checks that err is a refusal that shows nothing of s.
func checkRefusal(t *testing.T, what string, s *secret, err error, holders ...*daemon) {
	t.Helper()
	var reason string
	var de *exchange.DeniedError
	var se *search.DeniedError
	switch {
	case errors.As(err, &de):
		reason = de.Reason
	case errors.As(err, &se):
		reason = se.Reason
	default:
		t.Fatalf("%s: %v, want a refusal", what, err)
	}
	if !strings.HasPrefix(reason, "not found or not permitted") {
		t.Fatalf("%s: refused with %q, want it to start \"not found or not permitted\"", what, reason)
	}
	if leak := s.leaks([]byte(reason), holders...); leak != "" {
		t.Fatalf("%s: the refusal %q shows %s", what, reason, leak)
	}
	for _, c := range []string{s.root, s.chunk} {
		if strings.Contains(reason, c) {
			t.Fatalf("%s: the refusal %q names a piece", what, reason)
		}
	}
}
