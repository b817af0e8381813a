package node

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
)

// A check over the network answers root by root, and a bad request gets
// a reason instead of answers.
func TestCheck(t *testing.T) {
	a, b := startNode(t), startNode(t)
	ctx := context.Background()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.host.ID(), Addrs: b.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	res, err := b.Put(ctx, bytes.NewReader([]byte("not in a bucket")), pieces.DefaultBuildOptions())
	if err != nil {
		t.Fatal(err)
	}
	var id bucket.ID
	id[0] = 7
	other, _ := cid.Decode("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
	held, err := a.check(ctx, b.host.ID(), id, "", []cid.Cid{res.Root, other})
	if err != nil || len(held) != 2 || held[0] || held[1] {
		t.Fatalf("check of files kept outside the bucket: %v, %v; want two false", held, err)
	}
	for name, req := range map[string]string{
		"malformed":   `{"bucket":`,
		"bad bucket":  `{"bucket":"ddcbnope","roots":[]}`,
		"bad root":    `{"bucket":"` + id.String() + `","roots":["bafynope"]}`,
		"too many":    `{"bucket":"` + id.String() + `","roots":[` + strings.Repeat(`"x",`, maxCheckRoots) + `"x"]}`,
		"not a piece": `{"bucket":"` + id.String() + `","roots":["` + cid.NewCidV1(cid.DagProtobuf, res.Root.Hash()).String() + `"]}`,
	} {
		if ans := b.answerCheck(a.host.ID(), []byte(req)); ans.Error == "" || ans.Held != nil {
			t.Errorf("%s: answered %+v, want a reason and no answers", name, ans)
		}
	}
}

// The answers about a private bucket go only with a grant of get to the
// asker's key: none, one to another key, or one of put only are refused
// by the node that keeps the file; a node that keeps nothing of the
// bucket answers no to anyone, with no lookup.
func TestCheckPrivateBucket(t *testing.T) {
	holder, asker, bystander := startNode(t), startNode(t), startNode(t)
	ctx := context.Background()
	for _, n := range []*Node{asker, bystander} {
		if err := n.Connect(ctx, peer.AddrInfo{ID: holder.host.ID(), Addrs: holder.host.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	ks, err := repo.Keys(holder.repo.Path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Generate("owner"); err != nil {
		t.Fatal(err)
	}
	owner, _ := ks.Get("owner")
	rec, _ := bucket.NewRecord(owner, holder.Cluster(), true, "")
	if err := holder.records.offer(rec); err != nil {
		t.Fatal(err)
	}
	res, err := holder.PutIn(ctx, bytes.NewReader([]byte("a private file")), pieces.DefaultBuildOptions(), &In{Bucket: rec.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	grantTo := func(n *Node, ops bucket.Ops) string {
		acct, err := n.repo.Account()
		if err != nil {
			t.Fatal(err)
		}
		pub := acct.Public()
		tok, err := bucket.NewGrant(owner, rec.Bucket, &pub, ops, time.Now().Add(time.Hour), false, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tok.String()
	}
	roots := []cid.Cid{res.Root}
	for name, token := range map[string]string{
		"no grant":            "",
		"a grant to another":  grantTo(bystander, bucket.OpGet),
		"a grant of put only": grantTo(asker, bucket.OpPut),
	} {
		if held, err := asker.check(ctx, holder.host.ID(), rec.Bucket, token, roots); err == nil || !strings.Contains(err.Error(), "not found or not permitted") {
			t.Errorf("%s: %v, %v; want refused", name, held, err)
		}
	}
	held, err := asker.check(ctx, holder.host.ID(), rec.Bucket, grantTo(asker, bucket.OpGet), roots)
	if err != nil || len(held) != 1 || !held[0] {
		t.Fatalf("with a grant of get: %v, %v; want held", held, err)
	}
	if err := holder.Connect(ctx, peer.AddrInfo{ID: bystander.host.ID(), Addrs: bystander.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	held, err = holder.check(ctx, bystander.host.ID(), rec.Bucket, "", roots)
	if err != nil || len(held) != 1 || held[0] {
		t.Fatalf("a node keeping nothing of the bucket: %v, %v; want no", held, err)
	}
}
