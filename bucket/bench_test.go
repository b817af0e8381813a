package bucket_test

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/ddc-project/ddc/bucket"
)

// chain3 is a token of depth 3, owner → A → B → C, and C's request.
func chain3(b *testing.B) (string, bucket.Request) {
	owner, a, bk, c := key(b), key(b), key(b), key(b)
	r, _ := bucket.NewRecord(owner, "default", true, "")
	t, err := bucket.NewGrant(owner, r.Bucket, pub(a), bucket.OpGet, now.Add(time.Hour), true, now)
	if err == nil {
		t, err = t.Delegate(a, pub(bk), bucket.OpGet, now.Add(time.Hour), true, now)
	}
	if err == nil {
		t, err = t.Delegate(bk, pub(c), bucket.OpGet, now.Add(time.Hour), false, now)
	}
	if err != nil {
		b.Fatal(err)
	}
	return t.String(), bucket.Request{Bucket: r.Bucket, Owner: owner.Public(), Op: bucket.OpGet, Requester: pub(c), Now: now}
}

// BenchmarkVerifyChain3 parses and verifies a depth-3 chain from scratch:
// what the first request of a transfer pays. BenchmarkEd25519Verify, one
// signature check, is the baseline: the chain needs three.
func BenchmarkVerifyChain3(b *testing.B) {
	tok, req := chain3(b)
	for b.Loop() {
		if err := bucket.NewVerifier().Verify(tok, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyChain3Cached is every later request of the transfer.
func BenchmarkVerifyChain3Cached(b *testing.B) {
	tok, req := chain3(b)
	v := bucket.NewVerifier()
	for b.Loop() {
		if err := v.Verify(tok, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEd25519Verify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := make([]byte, 200)
	sig := ed25519.Sign(priv, msg)
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}
