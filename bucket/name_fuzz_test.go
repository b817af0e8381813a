package bucket_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/bucket"
)

// FuzzDecodeNameRecord: any bytes either fail to decode or decode to a
// record that encodes back to the same bytes, and verifying it never
// panics.
func FuzzDecodeNameRecord(f *testing.F) {
	owner, other := key(f), key(f)
	rec, _ := bucket.NewRecord(owner, "default", false, "")
	value, _ := cid.Decode("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
	first := bucket.NewBucketName(rec, "site/index.html", value, 1, cid.Undef, now)
	first.Sign(owner, "", now)
	b, _ := first.Marshal()
	f.Add(b)
	tok, _ := bucket.NewGrant(owner, rec.Bucket, pub(other), bucket.OpPut, now.Add(time.Hour), false, now)
	second := bucket.NewBucketName(rec, "site/index.html", value, 2, first.CID(), now)
	second.Sign(other, tok.String(), now)
	b, _ = second.Marshal()
	f.Add(b)
	acct := bucket.NewAccountName("home", value, 1, cid.Undef, now)
	acct.Sign(other, "", now)
	b, _ = acct.Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := bucket.DecodeNameRecord(b)
		if err != nil {
			return
		}
		r.Verify(now)
		again, err := r.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("name record %x encodes back as %x (%v)", b, again, err)
		}
	})
}
