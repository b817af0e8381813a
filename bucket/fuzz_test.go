package bucket_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/ddc-project/ddc/bucket"
)

// FuzzParseToken: any string either fails to parse or parses to a token
// whose text form is the string itself (one token, one text).
func FuzzParseToken(f *testing.F) {
	owner, a := key(f), key(f)
	r, _ := bucket.NewRecord(owner, "default", true, "")
	tok, _ := bucket.NewGrant(owner, r.Bucket, pub(a), bucket.OpGet, now.Add(time.Hour), true, now)
	f.Add(tok.String())
	bearer, _ := bucket.NewGrant(owner, r.Bucket, nil, bucket.OpGet|bucket.OpPut, now.Add(time.Hour), false, now)
	f.Add(bearer.String())
	f.Add(bearer.Chain())
	f.Add("ddct1gA")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := bucket.ParseToken(s)
		if err != nil {
			return
		}
		if tok.String() != s {
			t.Fatalf("parsed %q, prints %q", s, tok.String())
		}
		tok.Verify(bucket.Request{Bucket: r.Bucket, Owner: owner.Public(), Op: bucket.OpGet, Now: now})
	})
}

// FuzzParseRecord: any bytes either fail or are a valid record that
// encodes back to the same bytes.
func FuzzParseRecord(f *testing.F) {
	r, _ := bucket.NewRecord(key(f), "default", true, "label")
	b, _ := r.Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := bucket.ParseRecord(b)
		if err != nil {
			return
		}
		again, err := r.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("record %x encodes back as %x (%v)", b, again, err)
		}
	})
}
