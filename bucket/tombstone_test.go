package bucket

import (
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// A tombstone verifies when the owner signs it, or a key a grant of
// delete names; not with a put grant, another root, or from the future.
func TestTombstone(t *testing.T) {
	owner, _ := NewKey()
	other, _ := NewKey()
	rec, _ := NewRecord(owner, "default", false, "")
	root, _ := cid.Decode("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
	now := time.Now()
	pub := other.Public()
	grant := func(ops Ops) string {
		tok, err := NewGrant(owner, rec.Bucket, &pub, ops, now.Add(time.Hour), false, now)
		if err != nil {
			t.Fatal(err)
		}
		return tok.String()
	}
	ok := map[string]Tombstone{
		"by the owner":        NewTombstone(owner, rec.Bucket, root, "", now),
		"with a delete grant": NewTombstone(other, rec.Bucket, root, grant(OpDelete), now),
	}
	for name, ts := range ok {
		back, err := DecodeTombstone(ts.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if err := back.Verify(rec.Owner, now); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	moved := NewTombstone(owner, rec.Bucket, root, "", now)
	moved.Root, _ = cid.Decode("bafkreidgvpkjawlxz6sffxzwgooowe5yt7i6wsyg236mfoks77nywkptdq")
	bad := map[string]Tombstone{
		"with a put grant": NewTombstone(other, rec.Bucket, root, grant(OpPut), now),
		"with no grant":    NewTombstone(other, rec.Bucket, root, "", now),
		"another root":     moved,
		"from the future":  NewTombstone(owner, rec.Bucket, root, "", now.Add(time.Hour)),
	}
	for name, ts := range bad {
		if err := ts.Verify(rec.Owner, now); !errors.Is(err, ErrBadTombstone) {
			t.Errorf("%s: %v, want ErrBadTombstone", name, err)
		}
	}
}
