package bucket

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Ops is a set of operations a grant allows on a bucket.
type Ops uint8

// Operations.
const (
	OpGet    Ops = 1 << iota // read the bucket's files
	OpPut                    // add files to the bucket
	OpDelete                 // remove files from the bucket
	allOps   = OpGet | OpPut | OpDelete
)

var opNames = []struct {
	op   Ops
	name string
}{{OpGet, "get"}, {OpPut, "put"}, {OpDelete, "delete"}}

// String lists the operations, "get,put".
func (o Ops) String() string {
	var names []string
	for _, n := range opNames {
		if o&n.op != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// ParseOps reads "get,put,delete" (any non-empty subset).
func ParseOps(s string) (Ops, error) {
	var o Ops
	for name := range strings.SplitSeq(s, ",") {
		found := false
		for _, n := range opNames {
			if strings.TrimSpace(name) == n.name {
				o, found = o|n.op, true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown operation %.40q (want get, put or delete)", name)
		}
	}
	return o, nil
}

// Link is one grant in a chain: Issuer allows Subject the operations Ops
// on Bucket until Expires; with Delegate, Subject may grant a subset
// onwards. Every link names its subject's key; a bearer grant's subject is
// a key made for it, whose secret travels with the token (Token.Key).
type Link struct {
	Bucket   ID
	Issuer   PublicKey
	Subject  *PublicKey
	Ops      Ops
	IssuedAt time.Time // whole seconds
	Expires  time.Time // whole seconds
	Delegate bool
	Sig      []byte
}

// Token is a chain of grants: the first issued by the bucket's owner, each
// later one by the subject of the one before, never wider than it. A
// bearer token also carries Key, the secret of its last grant's subject:
// whoever holds the token's text can act as that subject, and proves it
// to each node it asks (Prove) without handing the secret over, so that
// a node that sees the request cannot reuse it.
type Token struct {
	Links []Link
	Key   *PrivateKey // the last subject's secret, in a bearer token; nil otherwise
}

// Grant limits.
const (
	MaxChain    = 8                       // links in a token
	MaxLifetime = 400 * 24 * time.Hour    // from issue to expiry
	ClockSkew   = 2 * time.Minute         // allowed between nodes' clocks
	maxToken    = 4096                    // bytes of a token's text form
	tokenPrefix = "ddct1"                 // the text form's first letters
	linkContext = "ddc/grant-link/v1\x00" // before the bytes a link signs
)

// Grant errors. Each is wrapped with what was wrong, naming the bucket.
var (
	ErrNoGrant      = errors.New("no grant")
	ErrExpired      = errors.New("grant expired")
	ErrWrongBucket  = errors.New("grant is for another bucket")
	ErrNotSubject   = errors.New("grant is for another key")
	ErrOpNotGranted = errors.New("operation not granted")
	ErrBadGrant     = errors.New("invalid grant")
)

// linkWire is a link on the wire: a CBOR array, in this order. An empty
// Subject was a bearer grant of an older ddc, which no node accepts now.
type linkWire struct {
	_        struct{} `cbor:",toarray"`
	Bucket   []byte
	Issuer   []byte
	Subject  []byte
	Ops      uint8
	IssuedAt int64
	Expires  int64
	Delegate bool
	Sig      []byte
}

func (l *Link) wire(withSig bool) linkWire {
	w := linkWire{Bucket: l.Bucket[:], Issuer: l.Issuer[:], Subject: []byte{}, Ops: uint8(l.Ops),
		IssuedAt: l.IssuedAt.Unix(), Expires: l.Expires.Unix(), Delegate: l.Delegate, Sig: []byte{}}
	if l.Subject != nil {
		w.Subject = l.Subject[:]
	}
	if withSig {
		w.Sig = l.Sig
	}
	return w
}

func (l *Link) signed() []byte {
	b, err := encMode.Marshal(l.wire(false))
	if err != nil {
		panic(err) // fixed shapes: a failure is a programming error
	}
	return append([]byte(linkContext), b...)
}

// subject names the link's subject for errors.
func (l *Link) subject() string {
	if l.Subject == nil {
		return "any bearer"
	}
	return l.Subject.String()
}

// NewGrant is a token of one link: the bucket's owner grants subject ops
// until expires. A nil subject makes a bearer token: the grant goes to a
// new key, whose secret the token carries.
func NewGrant(owner PrivateKey, bucket ID, subject *PublicKey, ops Ops, expires time.Time, delegate bool, now time.Time) (Token, error) {
	return Token{}.extend(owner, bucket, subject, ops, expires, delegate, now)
}

// Delegate extends t with a grant from its subject, holder, to subject
// (nil: a bearer token, as NewGrant makes): never wider than t (a subset
// of its operations, expiring no later, the same bucket), and only when t
// may be delegated.
func (t Token) Delegate(holder PrivateKey, subject *PublicKey, ops Ops, expires time.Time, delegate bool, now time.Time) (Token, error) {
	if len(t.Links) == 0 {
		return Token{}, fmt.Errorf("%w: nothing to delegate", ErrBadGrant)
	}
	return t.extend(holder, t.Links[0].Bucket, subject, ops, expires, delegate, now)
}

func (t Token) extend(issuer PrivateKey, bucket ID, subject *PublicKey, ops Ops, expires time.Time, delegate bool, now time.Time) (Token, error) {
	var secret *PrivateKey
	if subject == nil {
		k, err := NewKey()
		if err != nil {
			return Token{}, err
		}
		p := k.Public()
		secret, subject = &k, &p
	}
	s := *subject
	l := Link{Bucket: bucket, Issuer: issuer.Public(), Subject: &s, Ops: ops,
		IssuedAt: now.Truncate(time.Second), Expires: expires.Truncate(time.Second), Delegate: delegate}
	next := Token{Links: append(append([]Link(nil), t.Links...), l), Key: secret}
	if err := next.checkChain(len(next.Links) - 1); err != nil {
		return Token{}, err
	}
	next.Links[len(next.Links)-1].Sig = issuer.Sign(l.signed())
	return next, nil
}

// Subject is the key the token's last grant is to: the key that acts
// with it.
func (t Token) Subject() PublicKey {
	if len(t.Links) == 0 || t.Links[len(t.Links)-1].Subject == nil {
		return PublicKey{}
	}
	return *t.Links[len(t.Links)-1].Subject
}

// Bucket is the bucket the token is for.
func (t Token) Bucket() ID {
	if len(t.Links) == 0 {
		return ID{}
	}
	return t.Links[0].Bucket
}

// checkChain checks link i's fields and its place after link i-1, all but
// the signature.
func (t Token) checkChain(i int) error {
	l := &t.Links[i]
	b := l.Bucket
	switch {
	case len(t.Links) > MaxChain:
		return fmt.Errorf("%w for bucket %s: a chain of %d grants, at most %d", ErrBadGrant, b, len(t.Links), MaxChain)
	case l.Ops == 0 || l.Ops&^allOps != 0:
		return fmt.Errorf("%w for bucket %s: operations %#x (want a non-empty set of get, put, delete)", ErrBadGrant, b, uint8(l.Ops))
	case !l.Expires.After(l.IssuedAt):
		return fmt.Errorf("%w for bucket %s: expires at %s, not after it was issued at %s", ErrBadGrant, b, l.Expires.UTC().Format(time.RFC3339), l.IssuedAt.UTC().Format(time.RFC3339))
	case l.Expires.Sub(l.IssuedAt) > MaxLifetime:
		return fmt.Errorf("%w for bucket %s: lives %s, at most %s", ErrBadGrant, b, l.Expires.Sub(l.IssuedAt).Round(time.Hour), MaxLifetime)
	case l.Subject == nil:
		return fmt.Errorf("%w for bucket %s: grant %d is to any bearer, with no key of its own (a token of an older ddc): ask for a new one", ErrBadGrant, b, i+1)
	}
	if i == 0 {
		return nil
	}
	p := &t.Links[i-1]
	switch {
	case l.Bucket != p.Bucket:
		return fmt.Errorf("%w: a grant for bucket %s delegates one for %s", ErrBadGrant, p.Bucket, l.Bucket)
	case !p.Delegate:
		return fmt.Errorf("%w for bucket %s: %s may not delegate", ErrBadGrant, b, p.subject())
	case *p.Subject != l.Issuer:
		return fmt.Errorf("%w for bucket %s: grant %d is issued by %s, not by %s, the subject of the grant before", ErrBadGrant, b, i+1, l.Issuer, p.subject())
	case l.Ops&^p.Ops != 0:
		return fmt.Errorf("%w for bucket %s: grant %d widens %s to %s", ErrBadGrant, b, i+1, p.Ops, l.Ops)
	case l.Expires.After(p.Expires):
		return fmt.Errorf("%w for bucket %s: grant %d expires after the grant it came from (%s)", ErrBadGrant, b, i+1, p.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkSignatures checks the structure of the whole chain and every
// link's signature, and that the first link is the owner's: everything
// that does not depend on the time or the request.
func (t Token) checkSignatures(owner PublicKey) error {
	if len(t.Links) == 0 {
		return fmt.Errorf("%w: empty token", ErrBadGrant)
	}
	if t.Links[0].Issuer != owner {
		return fmt.Errorf("%w for bucket %s: the first grant is issued by %s, not the owner %s", ErrBadGrant, t.Links[0].Bucket, t.Links[0].Issuer, owner)
	}
	for i := range t.Links {
		if err := t.checkChain(i); err != nil {
			return err
		}
		l := &t.Links[i]
		if !l.Issuer.Verify(l.signed(), l.Sig) {
			return fmt.Errorf("%w for bucket %s: grant %d's signature is not %s's", ErrBadGrant, l.Bucket, i+1, l.Issuer)
		}
	}
	return nil
}

// Request is what a token is checked against: an operation on a bucket
// (whose record names its owner), at a time, by a requester that shows it
// holds the key the token's last grant is to, in one of two ways:
// Requester, a key it proved to hold otherwise (the key of its libp2p
// connection, or the secret a bearer token carries), or Proof, its
// signature with that key bound to the node it asks (see Prove).
type Request struct {
	Bucket    ID
	Owner     PublicKey
	Op        Ops
	Requester *PublicKey
	Proof     *Proof
	Now       time.Time
}

// Verify checks t for r: every signature, the chain back to the owner,
// the operation, the expiry and issue times (with ClockSkew), and that the
// requester holds the key the last grant is to.
func (t Token) Verify(r Request) error {
	if len(t.Links) > 0 && t.Links[0].Bucket != r.Bucket {
		return fmt.Errorf("%w: it is for bucket %s, not %s", ErrWrongBucket, t.Links[0].Bucket, r.Bucket)
	}
	if err := t.checkSignatures(r.Owner); err != nil {
		return err
	}
	return summarize(t).allows(r, Proof.by)
}

// summary is what a verified chain allows, for checking requests without
// verifying signatures again.
type summary struct {
	bucket   ID
	owner    PublicKey
	subject  *PublicKey
	ops      Ops
	issued   time.Time // the latest issue time in the chain
	expires  time.Time // the earliest expiry in the chain
	delegate bool
}

func summarize(t Token) summary {
	last := t.Links[len(t.Links)-1]
	s := summary{bucket: last.Bucket, owner: t.Links[0].Issuer, subject: last.Subject, ops: last.Ops, expires: last.Expires, delegate: last.Delegate}
	for _, l := range t.Links {
		if l.IssuedAt.After(s.issued) {
			s.issued = l.IssuedAt
		}
		if l.Expires.Before(s.expires) {
			s.expires = l.Expires
		}
	}
	return s
}

// allows checks r against what the chain allows; proven checks a proof
// by the chain's last subject.
func (s summary) allows(r Request, proven func(Proof, PublicKey, ID) bool) error {
	b := r.Bucket
	switch {
	case s.bucket != b:
		return fmt.Errorf("%w: it is for bucket %s, not %s", ErrWrongBucket, s.bucket, b)
	case s.owner != r.Owner:
		return fmt.Errorf("%w for bucket %s: it chains back to %s, not the owner %s", ErrBadGrant, b, s.owner, r.Owner)
	case s.issued.After(r.Now.Add(ClockSkew)):
		return fmt.Errorf("%w for bucket %s: issued in the future, at %s", ErrBadGrant, b, s.issued.UTC().Format(time.RFC3339))
	case !r.Now.Add(-ClockSkew).Before(s.expires):
		return fmt.Errorf("%w for bucket %s: at %s", ErrExpired, b, s.expires.UTC().Format(time.RFC3339))
	case s.ops&r.Op != r.Op:
		return fmt.Errorf("%w on bucket %s: the grant allows %s, not %s", ErrOpNotGranted, b, s.ops, r.Op)
	case s.subject == nil:
		return fmt.Errorf("%w for bucket %s: a grant to any bearer, with no key of its own", ErrBadGrant, b)
	case r.Requester != nil && *r.Requester == *s.subject:
	case r.Proof != nil && proven(*r.Proof, *s.subject, b):
	default:
		return fmt.Errorf("%w: the grant on bucket %s is for %s", ErrNotSubject, b, s.subject)
	}
	return nil
}

// String returns the token's text form: "ddct1" and base64url (no
// padding) of the CBOR array of its links; a bearer token adds "." and
// base64url of its key's 32-byte seed. It is URL- and header-safe.
func (t Token) String() string {
	s := t.Chain()
	if t.Key != nil {
		s += secretSep + base64.RawURLEncoding.EncodeToString(t.Key.Seed())
	}
	return s
}

// Chain is the text form of the token's grants alone, without a bearer
// token's secret: what a request carries to the nodes it asks, with a
// proof that it holds the key (Prove).
func (t Token) Chain() string {
	ws := make([]linkWire, len(t.Links))
	for i := range t.Links {
		ws[i] = t.Links[i].wire(true)
	}
	b, err := encMode.Marshal(ws)
	if err != nil {
		panic(err) // fixed shapes
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// secretSep separates a bearer token's grants from its secret: not a
// letter of base64url, and safe in URLs and headers.
const secretSep = "."

// ParseToken reads a token's text form. It checks the form and the
// bounds, not the signatures: Verify does.
func ParseToken(s string) (Token, error) {
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok {
		return Token{}, fmt.Errorf("%w token: does not start with %s", ErrMalformed, tokenPrefix)
	}
	if len(s) > maxToken {
		return Token{}, fmt.Errorf("%w token: %d bytes, at most %d", ErrMalformed, len(s), maxToken)
	}
	rest, secret, bearer := strings.Cut(rest, secretSep)
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil {
		return Token{}, fmt.Errorf("%w token: not base64url: %v", ErrMalformed, err)
	}
	var ws []linkWire
	if err := decodeCanonical("token", b, maxToken, &ws); err != nil {
		return Token{}, err
	}
	if len(ws) == 0 || len(ws) > MaxChain {
		return Token{}, fmt.Errorf("%w token: %d grants, want 1 to %d", ErrMalformed, len(ws), MaxChain)
	}
	t := Token{Links: make([]Link, len(ws))}
	for i, w := range ws {
		l := &t.Links[i]
		if len(w.Bucket) != len(l.Bucket) || len(w.Issuer) != len(l.Issuer) || (len(w.Subject) != 0 && len(w.Subject) != len(PublicKey{})) {
			return Token{}, fmt.Errorf("%w token: grant %d has a bucket, issuer or subject of the wrong length", ErrMalformed, i+1)
		}
		if len(w.Sig) != 64 {
			return Token{}, fmt.Errorf("%w token: grant %d has a signature of %d bytes, want 64", ErrMalformed, i+1, len(w.Sig))
		}
		copy(l.Bucket[:], w.Bucket)
		copy(l.Issuer[:], w.Issuer)
		if len(w.Subject) != 0 {
			var k PublicKey
			copy(k[:], w.Subject)
			l.Subject = &k
		}
		l.Ops, l.Delegate, l.Sig = Ops(w.Ops), w.Delegate, w.Sig
		l.IssuedAt, l.Expires = time.Unix(w.IssuedAt, 0), time.Unix(w.Expires, 0)
	}
	if bearer {
		seed, err := base64.RawURLEncoding.Strict().DecodeString(secret)
		if err != nil {
			return Token{}, fmt.Errorf("%w token: its key is not base64url: %v", ErrMalformed, err)
		}
		k, err := KeyFromSeed(seed)
		if err != nil {
			return Token{}, fmt.Errorf("%w token: its key: %v", ErrMalformed, err)
		}
		if last := t.Links[len(t.Links)-1].Subject; last == nil || *last != k.Public() {
			return Token{}, fmt.Errorf("%w token: its key is not the key its last grant is to", ErrMalformed)
		}
		t.Key = &k
	}
	if t.String() != s { // base64 skips line breaks: one token, one text
		return Token{}, fmt.Errorf("%w token: not in canonical form", ErrMalformed)
	}
	return t, nil
}
