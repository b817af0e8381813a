package bucket

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/node/basicnode"
)

var testValue, _ = cid.Decode("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")

type nameFixture struct {
	owner, other PrivateKey
	rec          Record
	now          time.Time
}

func newNameFixture(t *testing.T) nameFixture {
	owner, _ := NewKey()
	other, _ := NewKey()
	rec, err := NewRecord(owner, "default", false, "")
	if err != nil {
		t.Fatal(err)
	}
	return nameFixture{owner, other, rec, time.Now()}
}

func (f nameFixture) grant(t *testing.T, ops Ops) string {
	pub := f.other.Public()
	tok, err := NewGrant(f.owner, f.rec.Bucket, &pub, ops, f.now.Add(time.Hour), false, f.now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return tok.String()
}

func (f nameFixture) signed(t *testing.T, seq uint64, prev cid.Cid) NameRecord {
	r := NewBucketName(f.rec, "talks/keynote.mp4", testValue, seq, prev, f.now)
	if err := r.Sign(f.owner, "", f.now); err != nil {
		t.Fatal(err)
	}
	return r
}

// A record's encoding is canonical DAG-CBOR: it decodes to itself, go-
// ipld-prime's DAG-CBOR codec reads it and writes the same bytes back
// (so its CID is what IPLD tools compute), and links are tag 42.
func TestNameRecordCanonical(t *testing.T) {
	f := newNameFixture(t)
	first := f.signed(t, 1, cid.Undef)
	second := f.signed(t, 2, first.CID())
	for _, r := range []NameRecord{first, second} {
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseNameRecord(b, f.now)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := back.Marshal()
		if !bytes.Equal(again, b) || back.Prev != r.Prev || back.Value != r.Value || back.Seq != r.Seq {
			t.Fatalf("decoded record differs: %+v vs %+v", back, r)
		}
		nb := basicnode.Prototype.Any.NewBuilder()
		if err := dagcbor.Decode(nb, bytes.NewReader(b)); err != nil {
			t.Fatalf("DAG-CBOR codec refuses a name record: %v", err)
		}
		var out bytes.Buffer
		if err := dagcbor.Encode(nb.Build(), &out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), b) {
			t.Fatalf("DAG-CBOR re-encodes a name record differently:\n%x\n%x", out.Bytes(), b)
		}
		if r.CID().Type() != 0x71 {
			t.Fatalf("record CID %s is not dag-cbor", r.CID())
		}
	}
	// Non-canonical: the same map with a non-minimal integer.
	b, _ := second.Marshal()
	i := bytes.Index(b, []byte("seq\x02"))
	if i < 0 {
		t.Fatal("no seq field found")
	}
	bad := append(append(append([]byte{}, b[:i+3]...), 0x18, 0x02), b[i+4:]...)
	if _, err := DecodeNameRecord(bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("non-minimal integer decoded: %v", err)
	}
}

// Verification refuses what is forged or out of scope, naming why.
func TestNameRecordRefusals(t *testing.T) {
	f := newNameFixture(t)
	byGrant := func(ops Ops) (NameRecord, error) {
		r := NewBucketName(f.rec, "site", testValue, 1, cid.Undef, f.now)
		return r, r.Sign(f.other, f.grant(t, ops), f.now)
	}
	if _, err := byGrant(OpPut); err != nil {
		t.Fatalf("a grant of put: %v", err)
	}
	if _, err := byGrant(OpGet); !errors.Is(err, ErrOpNotGranted) {
		t.Errorf("a grant of get only: %v, want ErrOpNotGranted", err)
	}
	noGrant := NewBucketName(f.rec, "site", testValue, 1, cid.Undef, f.now)
	if err := noGrant.Sign(f.other, "", f.now); !errors.Is(err, ErrNoGrant) {
		t.Errorf("a stranger without a grant: %v, want ErrNoGrant", err)
	}
	other, _ := NewRecord(f.owner, "default", false, "")
	wrong := NewBucketName(f.rec, "site", testValue, 1, cid.Undef, f.now)
	pub := f.other.Public()
	tok, _ := NewGrant(f.owner, other.Bucket, &pub, OpPut, f.now.Add(time.Hour), false, f.now)
	if err := wrong.Sign(f.other, tok.String(), f.now); !errors.Is(err, ErrWrongBucket) {
		t.Errorf("a grant for another bucket: %v, want ErrWrongBucket", err)
	}

	good := f.signed(t, 3, cid.Undef)
	tampered := good
	tampered.Value = good.CID()
	if err := tampered.Verify(f.now); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("a changed CID: %v, want a bad signature", err)
	}
	moved := good
	moved.Nonce[0] ^= 1
	if err := moved.Verify(f.now); err == nil || !strings.Contains(err.Error(), "derive") {
		t.Errorf("another bucket's nonce: %v", err)
	}
	future := NewBucketName(f.rec, "site", testValue, 1, cid.Undef, f.now.Add(time.Hour))
	if err := future.Sign(f.owner, "", f.now); err == nil || !strings.Contains(err.Error(), "future") {
		t.Errorf("signed in the future: %v", err)
	}
	for _, n := range []string{"", "a//b", "a/./b", "../x", "x/", strings.Repeat("a", MaxName+1), "tab\there"} {
		r := NewBucketName(f.rec, n, testValue, 1, cid.Undef, f.now)
		if err := r.Sign(f.owner, "", f.now); !errors.Is(err, ErrBadName) {
			t.Errorf("name %q: %v, want ErrBadName", n, err)
		}
	}
	acct := NewAccountName("home", testValue, 1, cid.Undef, f.now)
	if err := acct.Sign(f.other, "", f.now); err != nil {
		t.Fatalf("an account's name: %v", err)
	}
	if acct.Scope().Account != f.other.Public() {
		t.Fatal("an account's name is not in its signer's scope")
	}
}

// The validator accepts a record only under its own name's key; the
// selector takes the highest sequence number, then the greatest CID,
// whatever the order, and never an invalid record.
func TestNameValidatorSelect(t *testing.T) {
	f := newNameFixture(t)
	v := NameValidator{Now: func() time.Time { return f.now }}
	one, two := f.signed(t, 1, cid.Undef), f.signed(t, 2, cid.Undef)
	key := NameIDOf(one.Scope(), one.Name).Key()
	b1, _ := one.Marshal()
	b2, _ := two.Marshal()
	if err := v.Validate(key, b1); err != nil {
		t.Fatal(err)
	}
	elsewhere := NameIDOf(one.Scope(), "another").Key()
	if err := v.Validate(elsewhere, b1); !errors.Is(err, ErrBadNameRecord) {
		t.Errorf("a record under another name's key: %v", err)
	}
	acctKey := NameIDOf(NameScope{Account: f.owner.Public()}, one.Name).Key()
	if err := v.Validate(acctKey, b1); err == nil {
		t.Error("a bucket's record under the owner account's key of the same name")
	}
	if err := v.Validate("/ddcn/short", b1); !errors.Is(err, ErrBadName) {
		t.Errorf("a malformed key: %v", err)
	}
	forged := append([]byte{}, b2...)
	forged[len(forged)-1] ^= 1
	for _, vals := range [][][]byte{{b1, b2}, {b2, b1}, {forged, b1}} {
		i, err := v.Select(key, vals)
		if err != nil {
			t.Fatal(err)
		}
		want := b2
		if bytes.Equal(vals[0], forged) {
			want = b1
		}
		if !bytes.Equal(vals[i], want) {
			t.Errorf("select picked %d of %d", i, len(vals))
		}
	}
	if i, _ := v.Select(key, [][]byte{b2, b2}); i != 0 {
		t.Errorf("of two identical records select picked %d, want the first", i)
	}
	// Same sequence number: the greater CID, in either order.
	twoB := NewBucketName(f.rec, one.Name, two.CID(), 2, cid.Undef, f.now)
	twoB.Sign(f.owner, "", f.now)
	bb, _ := twoB.Marshal()
	want := b2
	if bytes.Compare(twoB.CID().Bytes(), two.CID().Bytes()) > 0 {
		want = bb
	}
	for _, vals := range [][][]byte{{b2, bb}, {bb, b2}} {
		if i, _ := v.Select(key, vals); !bytes.Equal(vals[i], want) {
			t.Error("a tie of sequence numbers is not broken by the CID the same way in both orders")
		}
	}
	if _, err := v.Select(key, [][]byte{forged}); err == nil {
		t.Error("select of only a forged record did not fail")
	}
}
