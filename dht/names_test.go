package dht_test

import (
	"context"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/dht"
)

// Name records in a five-node DHT: a version put on one node is found on
// another, a newer one replaces it, and a peer sending a forged record,
// an older version, a record signed with a grant of get only, or a
// record of another name under this one's key is refused by every node
// the validator runs on, which keep the newest valid version.
func TestNameRecords(t *testing.T) {
	hosts, dhts := network(t, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	owner, _ := bucket.NewKey()
	stranger, _ := bucket.NewKey()
	rec, _ := bucket.NewRecord(owner, "default", false, "")
	value, _ := cid.Decode("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
	now := time.Now()
	sign := func(name string, seq uint64, prev cid.Cid, key bucket.PrivateKey, token string) bucket.NameRecord {
		r := bucket.NewBucketName(rec, name, value, seq, prev, now)
		if err := r.Sign(key, token, now); err != nil && token == "" {
			t.Fatal(err)
		}
		return r
	}
	v1 := sign("site", 1, cid.Undef, owner, "")
	v2 := sign("site", 2, v1.CID(), owner, "")
	id := bucket.NameIDOf(v1.Scope(), "site")
	if err := dhts[0].PutName(ctx, v1); err != nil {
		t.Fatal(err)
	}
	if got, err := dhts[3].GetName(ctx, id, false); err != nil || got.Seq != 1 {
		t.Fatalf("node 3 got %+v, %v", got, err)
	}
	if err := dhts[1].PutName(ctx, v2); err != nil {
		t.Fatal(err)
	}
	pub := stranger.Public()
	getOnly, _ := bucket.NewGrant(owner, rec.Bucket, &pub, bucket.OpGet, now.Add(time.Hour), false, now.Add(-time.Minute))
	byGet := sign("site", 9, cid.Undef, stranger, getOnly.String()) // Sign refuses; the bytes are what a liar would send
	forged := v2
	forged.Seq, forged.Value = 10, v1.CID()
	older, _ := v1.Marshal()
	fb, _ := forged.Marshal()
	gb, _ := byGet.Marshal()
	otherRec := sign("other", 11, cid.Undef, owner, "")
	other, _ := otherRec.Marshal()
	for i := 1; i < len(dhts); i++ {
		for what, b := range map[string][]byte{"forged": fb, "older": older, "get-only": gb, "other name's": other} {
			if err := dht.PutRawRecord(ctx, dhts[0], hosts[i].ID(), id.Key(), b); err == nil {
				t.Errorf("node %d took a %s name record", i, what)
			}
		}
	}
	for _, i := range []int{0, 2, 4} {
		got, err := dhts[i].GetName(ctx, id, false)
		if err != nil || got.Seq != 2 || got.Prev != v1.CID() {
			t.Fatalf("node %d got %+v, %v; want version 2", i, got, err)
		}
		if first, err := dhts[i].GetName(ctx, id, true); err != nil || first.Seq != 2 {
			t.Fatalf("node %d's first answer %+v, %v; want version 2", i, first, err)
		}
	}
	if _, err := dhts[2].GetName(ctx, bucket.NameIDOf(v1.Scope(), "none"), false); err == nil {
		t.Fatal("a name nobody published resolved")
	}
}
