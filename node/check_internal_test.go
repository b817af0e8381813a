package node

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/bucket"
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
	held, err := a.check(ctx, b.host.ID(), id, []cid.Cid{res.Root, other})
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
		if ans := b.answerCheck([]byte(req)); ans.Error == "" || ans.Held != nil {
			t.Errorf("%s: answered %+v, want a reason and no answers", name, ans)
		}
	}
}
