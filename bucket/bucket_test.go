package bucket_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ddc-project/ddc/bucket"
)

func key(t testing.TB) bucket.PrivateKey {
	t.Helper()
	k, err := bucket.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pub(k bucket.PrivateKey) *bucket.PublicKey { p := k.Public(); return &p }

func TestKeyText(t *testing.T) {
	k := key(t)
	s := k.Public().String()
	if !strings.HasPrefix(s, "did:key:z6Mk") {
		t.Fatalf("did:key of an ed25519 key: %s, want did:key:z6Mk…", s)
	}
	got, err := bucket.ParsePublicKey(s)
	if err != nil || got != k.Public() {
		t.Fatalf("parse %s: %v, %v", s, got, err)
	}
	again, _ := bucket.KeyFromSeed(k.Seed())
	if again.Public() != k.Public() {
		t.Fatal("a key from its seed is another key")
	}
	for _, bad := range []string{"", "did:key:", "did:key:z", "z6Mk" + s[12:], s[:len(s)-1], s + "a", "did:key:f" + s[9:],
		"did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme"} { // a secp256k1 did:key
		if _, err := bucket.ParsePublicKey(bad); !errors.Is(err, bucket.ErrBadKey) {
			t.Errorf("parse %q: %v, want ErrBadKey", bad, err)
		}
	}
}

func TestIDText(t *testing.T) {
	r, err := bucket.NewRecord(key(t), "default", false, "")
	if err != nil {
		t.Fatal(err)
	}
	s := r.Bucket.String()
	if got, err := bucket.ParseID(s); err != nil || got != r.Bucket {
		t.Fatalf("parse %s: %v", s, err)
	}
	trailing := s[:len(s)-1] + string(s[len(s)-1]+1) // the last letter holds one bit and four zero ones
	for _, bad := range []string{"", "ddcb", strings.ToUpper(s), "ddca" + s[4:], s[:len(s)-1], s + "a", s[:len(s)-1] + "1", trailing} {
		if _, err := bucket.ParseID(bad); !errors.Is(err, bucket.ErrBadID) {
			t.Errorf("parse %q: %v, want ErrBadID", bad, err)
		}
	}
}

func TestRecords(t *testing.T) {
	owner, other := key(t), key(t)
	r, err := bucket.NewRecord(owner, "red", true, "holiday videos")
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := bucket.ParseRecord(b)
	if err != nil || got.Bucket != r.Bucket || got.Owner != owner.Public() || !got.Private || got.Label != "holiday videos" || got.Cluster != "red" || got.Seq != 1 {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for i := range b { // any byte changed: refused
		bad := append([]byte(nil), b...)
		bad[i] ^= 0x01
		if _, err := bucket.ParseRecord(bad); err == nil {
			t.Fatalf("a record with byte %d flipped was accepted", i)
		}
	}

	v2 := r
	v2.Seq, v2.Private = 2, false
	if err := v2.Sign(other); err == nil {
		t.Fatal("a non-owner signed the owner's record")
	}
	forged := v2
	forged.Sig = other.Sign([]byte("anything"))
	if err := forged.Verify(); !errors.Is(err, bucket.ErrBadRecord) {
		t.Fatalf("a record signed by a non-owner: %v", err)
	}
	stolen, _ := bucket.NewRecord(other, "red", false, "")
	stolen.Bucket = r.Bucket // another owner's record under this ID
	if err := stolen.Sign(other); !errors.Is(err, bucket.ErrBadRecord) {
		t.Fatalf("a record whose ID does not derive from its owner: %v", err)
	}
	if err := v2.Sign(owner); err != nil {
		t.Fatal(err)
	}
	if !bucket.Newer(v2, r) || bucket.Newer(r, v2) {
		t.Fatal("the record with the higher sequence number does not win")
	}
	if err := (&bucket.Record{Bucket: r.Bucket, Owner: r.Owner, Nonce: r.Nonce, Cluster: "red", Replicas: 1, Seq: 3, Label: "a\nb"}).Sign(owner); err == nil {
		t.Fatal("a label with a newline was signed")
	}
	key := bucket.RecordKey(r.Bucket)
	if id, err := bucket.IDFromKey(key); err != nil || id != r.Bucket {
		t.Fatalf("IDFromKey(RecordKey): %v, %v", id, err)
	}
}

// now is a fixed time, so the tests do not depend on the clock.
var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestGrants(t *testing.T) {
	owner, a, b, c := key(t), key(t), key(t), key(t)
	r, _ := bucket.NewRecord(owner, "default", true, "")
	other, _ := bucket.NewRecord(owner, "default", true, "")
	req := func(op bucket.Ops, by *bucket.PublicKey, at time.Time) bucket.Request {
		return bucket.Request{Bucket: r.Bucket, Owner: owner.Public(), Op: op, Requester: by, Now: at}
	}
	holder, requester := []byte("holder-node"), []byte("requester-node")
	proved := func(with bucket.PrivateKey, b bucket.ID) bucket.Request {
		sig, err := bucket.Prove(with, b, holder, requester)
		if err != nil {
			t.Fatal(err)
		}
		rq := req(bucket.OpGet, nil, now)
		rq.Proof = &bucket.Proof{Holder: holder, Requester: requester, Sig: sig}
		return rq
	}
	day := now.Add(24 * time.Hour)
	toA, err := bucket.NewGrant(owner, r.Bucket, pub(a), bucket.OpGet|bucket.OpPut, day, true, now)
	if err != nil {
		t.Fatal(err)
	}
	bearer, _ := bucket.NewGrant(owner, r.Bucket, nil, bucket.OpGet, day, false, now)
	toB, err := toA.Delegate(a, pub(b), bucket.OpGet, now.Add(time.Hour), false, now)
	if err != nil {
		t.Fatal(err)
	}
	forOther, _ := bucket.NewGrant(owner, other.Bucket, pub(a), bucket.OpGet, day, false, now)
	byOther, _ := bucket.NewGrant(c, r.Bucket, pub(a), bucket.OpGet, day, false, now)

	for _, tc := range []struct {
		name string
		tok  bucket.Token
		req  bucket.Request
		want error // nil: allowed
	}{
		{"to A, by A", toA, req(bucket.OpGet, pub(a), now), nil},
		{"to A, put by A", toA, req(bucket.OpPut, pub(a), now), nil},
		{"to A, delete by A", toA, req(bucket.OpDelete, pub(a), now), bucket.ErrOpNotGranted},
		{"to A, by B", toA, req(bucket.OpGet, pub(b), now), bucket.ErrNotSubject},
		{"to A, by nobody proven", toA, req(bucket.OpGet, nil, now), bucket.ErrNotSubject},
		{"to A, after expiry", toA, req(bucket.OpGet, pub(a), day.Add(bucket.ClockSkew)), bucket.ErrExpired},
		{"to A, within the skew after expiry", toA, req(bucket.OpGet, pub(a), day.Add(bucket.ClockSkew/2)), nil},
		{"to A, before issue", toA, req(bucket.OpGet, pub(a), now.Add(-2*bucket.ClockSkew)), bucket.ErrBadGrant},
		{"bearer, by its key's holder", bearer, req(bucket.OpGet, pub(*bearer.Key), now), nil},
		{"bearer, with a proof by its key", bearer, proved(*bearer.Key, r.Bucket), nil},
		{"bearer, with a proof for another bucket", bearer, proved(*bearer.Key, other.Bucket), bucket.ErrNotSubject},
		{"bearer, with a proof by another key", bearer, proved(a, r.Bucket), bucket.ErrNotSubject},
		{"bearer, with no proof", bearer, req(bucket.OpGet, nil, now), bucket.ErrNotSubject},
		{"bearer, put", bearer, req(bucket.OpPut, pub(*bearer.Key), now), bucket.ErrOpNotGranted},
		{"to A, with a proof by A", toA, proved(a, r.Bucket), nil},
		{"A to B, by B", toB, req(bucket.OpGet, pub(b), now), nil},
		{"A to B, put by B", toB, req(bucket.OpPut, pub(b), now), bucket.ErrOpNotGranted},
		{"A to B, after its own expiry", toB, req(bucket.OpGet, pub(b), now.Add(2*time.Hour)), bucket.ErrExpired},
		{"for another bucket", forOther, req(bucket.OpGet, pub(a), now), bucket.ErrWrongBucket},
		{"not from the owner", byOther, req(bucket.OpGet, pub(a), now), bucket.ErrBadGrant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := bucket.ParseToken(tc.tok.String())
			if err != nil {
				t.Fatal(err)
			}
			err = tok.Verify(tc.req)
			v := bucket.NewVerifier()
			for range 2 { // the second time from the cache
				if verr := v.Verify(tc.tok.String(), tc.req); !errors.Is(verr, tc.want) || (tc.want == nil) != (verr == nil) {
					t.Fatalf("Verifier: %v, want %v", verr, tc.want)
				}
			}
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), r.Bucket.String()) && !strings.Contains(err.Error(), other.Bucket.String()) {
				t.Fatalf("error names no bucket: %v", err)
			}
		})
	}

	// Delegation never widens, and B may not delegate at all.
	if _, err := toB.Delegate(b, pub(c), bucket.OpGet, now.Add(time.Minute), false, now); err == nil {
		t.Fatal("B, without the right to delegate, issued a grant")
	}
	if _, err := toA.Delegate(a, pub(b), bucket.OpGet|bucket.OpDelete, now.Add(time.Hour), false, now); err == nil {
		t.Fatal("A widened get,put to get,delete")
	}
	if _, err := toA.Delegate(a, pub(b), bucket.OpGet, day.Add(time.Hour), false, now); err == nil {
		t.Fatal("A extended the expiry")
	}
	if _, err := toA.Delegate(b, pub(c), bucket.OpGet, now.Add(time.Hour), false, now); err == nil {
		t.Fatal("B delegated a grant made to A")
	}
	if _, err := bucket.NewGrant(owner, r.Bucket, pub(a), bucket.OpGet, now.Add(bucket.MaxLifetime+time.Hour), false, now); err == nil {
		t.Fatal("a grant living past the maximum was issued")
	}
}

// TestBearerTokens: a bearer token carries the secret of the key its
// grant is to; its chain alone is what requests carry, with a proof bound
// to the node asked, which a node that saw it cannot use at another.
func TestBearerTokens(t *testing.T) {
	owner := key(t)
	r, _ := bucket.NewRecord(owner, "default", true, "")
	bearer, err := bucket.NewGrant(owner, r.Bucket, nil, bucket.OpGet, now.Add(time.Hour), true, now)
	if err != nil || bearer.Key == nil || bearer.Subject() != bearer.Key.Public() {
		t.Fatalf("a bearer grant: %+v, %v; want one with its subject's key", bearer, err)
	}
	text := bearer.String()
	got, err := bucket.ParseToken(text)
	if err != nil || got.Key == nil || got.Key.Public() != bearer.Key.Public() || got.String() != text {
		t.Fatalf("round trip of %s: %v", text, err)
	}
	chain, err := bucket.ParseToken(bearer.Chain())
	if err != nil || chain.Key != nil || chain.Subject() != bearer.Subject() || !strings.HasPrefix(text, bearer.Chain()+".") {
		t.Fatalf("the chain of a bearer token: %+v, %v", chain, err)
	}
	// Another key's secret beside the chain is refused.
	other, _ := bucket.NewGrant(owner, r.Bucket, nil, bucket.OpGet, now.Add(time.Hour), false, now)
	mixed := bearer.Chain() + other.String()[len(other.Chain()):]
	if _, err := bucket.ParseToken(mixed); !errors.Is(err, bucket.ErrMalformed) {
		t.Fatalf("a chain with another grant's key: %v", err)
	}
	// A proof made for one holder does not serve at another.
	sig, _ := bucket.Prove(*bearer.Key, r.Bucket, []byte("rogue"), []byte("getter"))
	rq := bucket.Request{Bucket: r.Bucket, Owner: owner.Public(), Op: bucket.OpGet, Now: now,
		Proof: &bucket.Proof{Holder: []byte("owner"), Requester: []byte("rogue"), Sig: sig}}
	if err := bucket.NewVerifier().Verify(bearer.Chain(), rq); !errors.Is(err, bucket.ErrNotSubject) {
		t.Fatalf("a proof replayed at another holder: %v", err)
	}
	rq.Proof.Holder, rq.Proof.Requester = []byte("rogue"), []byte("getter")
	if err := bucket.NewVerifier().Verify(bearer.Chain(), rq); err != nil {
		t.Fatalf("the proof where it was made for: %v", err)
	}
	// The holder of a delegable bearer token delegates with its key.
	sub, err := bearer.Delegate(*bearer.Key, nil, bucket.OpGet, now.Add(time.Minute), false, now)
	if err != nil || sub.Key == nil || sub.Key.Public() == bearer.Key.Public() {
		t.Fatalf("delegating a bearer token: %v", err)
	}
	if err := sub.Verify(bucket.Request{Bucket: r.Bucket, Owner: owner.Public(), Op: bucket.OpGet, Requester: pub(*sub.Key), Now: now}); err != nil {
		t.Fatal(err)
	}
	// A grant to any bearer with no key, as an older ddc made: refused.
	old := bearer
	old.Key = nil
	old.Links = append([]bucket.Link(nil), bearer.Links...)
	old.Links[0].Subject = nil
	if err := old.Verify(bucket.Request{Bucket: r.Bucket, Owner: owner.Public(), Op: bucket.OpGet, Now: now}); !errors.Is(err, bucket.ErrBadGrant) {
		t.Fatalf("a keyless bearer grant: %v", err)
	}
}

// TestTokenTampering: a token with any byte of its text changed, or a link
// re-signed by someone else, fails.
func TestTokenTampering(t *testing.T) {
	owner, a, b := key(t), key(t), key(t)
	r, _ := bucket.NewRecord(owner, "default", true, "")
	toA, _ := bucket.NewGrant(owner, r.Bucket, pub(a), bucket.OpGet, now.Add(time.Hour), true, now)
	toB, _ := toA.Delegate(a, pub(b), bucket.OpGet, now.Add(time.Hour), false, now)
	req := bucket.Request{Bucket: r.Bucket, Owner: owner.Public(), Op: bucket.OpGet, Requester: pub(b), Now: now}
	s := toB.String()
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range s {
		bad := []byte(s)
		bad[i] = alphabet[(strings.IndexByte(alphabet, s[i])+1)%len(alphabet)]
		if err := bucket.NewVerifier().Verify(string(bad), req); err == nil {
			t.Fatalf("a token with letter %d changed verified", i)
		}
	}
	// A's link signed by B instead: one broken signature in the chain.
	broken := toB
	broken.Links = append([]bucket.Link(nil), toB.Links...)
	broken.Links[1].Sig = b.Sign([]byte("not the link"))
	if err := broken.Verify(req); !errors.Is(err, bucket.ErrBadGrant) {
		t.Fatalf("a chain with a broken signature: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"", "ddct1", "ddct1!!!", "xyz", "ddct1" + strings.Repeat("A", 5000), "ddct1gA"} {
		if _, err := bucket.ParseToken(s); !errors.Is(err, bucket.ErrMalformed) {
			t.Errorf("token %.20q: %v, want ErrMalformed", s, err)
		}
	}
	for _, ops := range []string{"", "read", "get,,put", "get;put"} {
		if _, err := bucket.ParseOps(ops); err == nil {
			t.Errorf("ops %q accepted", ops)
		}
	}
	if o, err := bucket.ParseOps("get,delete"); err != nil || o != bucket.OpGet|bucket.OpDelete || o.String() != "get,delete" {
		t.Errorf("ops get,delete: %v %v", o, err)
	}
}

// TestRecordValidator: the DHT accepts only a valid record under its own
// bucket's key, and of several keeps the newest.
func TestRecordValidator(t *testing.T) {
	owner, other := key(t), key(t)
	r1, _ := bucket.NewRecord(owner, "default", false, "")
	r2 := r1
	r2.Seq, r2.Private = 2, true
	if err := r2.Sign(owner); err != nil {
		t.Fatal(err)
	}
	elsewhere, _ := bucket.NewRecord(owner, "default", false, "")
	forged := r2
	forged.Seq = 3
	forged.Sig = other.Sign([]byte("x"))
	enc := func(r bucket.Record) []byte {
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	v := bucket.RecordValidator{}
	k := bucket.RecordKey(r1.Bucket)
	if err := v.Validate(k, enc(r1)); err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(k, enc(elsewhere)); !errors.Is(err, bucket.ErrBadRecord) {
		t.Fatalf("another bucket's record under this key: %v", err)
	}
	if err := v.Validate("/ddcb/short", enc(r1)); err == nil {
		t.Fatal("a record under a malformed key was accepted")
	}
	if i, err := v.Select(k, [][]byte{enc(r1), enc2(forged), enc(r2)}); err != nil || i != 2 {
		t.Fatalf("select: %d, %v; want 2 (the newest valid)", i, err)
	}
	if _, err := v.Select(k, [][]byte{[]byte("junk")}); err == nil {
		t.Fatal("select among no valid records succeeded")
	}
}

// enc2 encodes a record whatever its signature is, as an attacker would.
func enc2(r bucket.Record) []byte {
	b, _ := r.Marshal()
	return b
}

func TestRecordReplicas(t *testing.T) {
	owner := key(t)
	r, err := bucket.NewRecord(owner, "red", false, "")
	if err != nil {
		t.Fatal(err)
	}
	one, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if r.Replicas != 1 || one[0] != 0x89 || one[1] != 0x01 { // an array of 9, version 1: what builds before replication read
		t.Fatalf("a record of one replica: %d replicas, encoded as % x...", r.Replicas, one[:2])
	}
	r.Replicas, r.Seq = 3, 2
	if err := r.Sign(owner); err != nil {
		t.Fatal(err)
	}
	three, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if three[0] != 0x8a || three[1] != 0x02 {
		t.Fatalf("a record of 3 replicas encoded as % x..., want an array of 10, version 2", three[:2])
	}
	got, err := bucket.ParseRecord(three)
	if err != nil || got.Replicas != 3 || got.Seq != 2 {
		t.Fatalf("round trip of 3 replicas: %+v, %v", got, err)
	}
	for i := range three {
		bad := append([]byte(nil), three...)
		bad[i] ^= 0x01
		if _, err := bucket.ParseRecord(bad); err == nil {
			t.Fatalf("a record of 3 replicas with byte %d flipped was accepted", i)
		}
	}
	for _, n := range []int{0, bucket.MaxReplicas + 1} {
		r.Replicas = n
		if err := r.Sign(owner); !errors.Is(err, bucket.ErrBadRecord) {
			t.Errorf("%d replicas signed: %v", n, err)
		}
	}
}
