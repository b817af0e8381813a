package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/exchange"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces/store"
	"github.com/ddc-project/ddc/search"
)

// Who may read. One rule, mayRead (a piece) and mayReadBucket (a bucket
// as a whole: search, paths), decides for every path that hands out bytes
// or metadata, whether or not the node holds what is asked:
//
//   - A piece in no bucket, or in a bucket whose current record is
//     public, is anyone's to read.
//   - Otherwise the request must name one of the piece's buckets and be
//     the bucket owner's own (another node whose connection proves the
//     owner's key), or present a grant of get for it to a key the
//     requester proves it holds: a node, by its connection's key or a
//     proof made for this node (bucket.Prove); a gateway client, only by
//     the secret a bearer token carries, so a grant bound to a node's key
//     serves no HTTP client, on that node or any other.
//   - The node's operator (its API and CLI: the zero reader) reads what
//     the node stores, as it can read its disk; what the node fetches for
//     it, holders judge by the grant the node presents for the operator
//     (a token given, or one the node issues itself with the owner's key
//     when its repo holds it). The node's own keys never stand in for a
//     gateway client.
//
// Refusals tell a stranger little: peers and gateway clients hear "not
// found or not permitted", or what is wrong with the grant they sent;
// the detail goes to the node's log.

// In names the bucket a put or a read works in, the grant token for it,
// and who reads.
type In struct {
	Bucket bucket.ID // zero: no bucket (only a guest's In has none)
	Token  string    // a grant for Bucket; empty: none, or for the operator one the node issues itself with the owner's key
	// Guest marks a read for a gateway client (the world) rather than
	// the node's operator: it reads only what the rule allows anyone,
	// or what its bearer token grants.
	Guest bool
}

func (in *In) inBucket() bool { return in != nil && in.Bucket != (bucket.ID{}) }

func (in *In) reader() reader { return reader{guest: in != nil && in.Guest} }

// Access errors.
var (
	// ErrTokenWithoutBucket means a grant token given without the bucket
	// it is for.
	ErrTokenWithoutBucket = errors.New("a token without a bucket")
	// ErrNotPermitted is what every refusal to a peer or a gateway client
	// wraps, and all it says unless what was wrong is the grant it sent.
	ErrNotPermitted = errors.New("not found or not permitted")
)

// AccessError is a refusal of a read, with its detail: what the node's
// log and operator see. Strangers hear Stranger().
type AccessError struct {
	What string // the CID or bucket asked for
	Err  error
}

func (e *AccessError) Error() string {
	return fmt.Sprintf("%s: %v: %v", e.What, ErrNotPermitted, e.Err)
}

// Unwrap gives ErrNotPermitted and the cause.
func (e *AccessError) Unwrap() []error { return []error{ErrNotPermitted, e.Err} }

// grantErrors are what a stranger may hear was wrong with the grant it
// presented: its own token's fault, not a word about what is asked.
var grantErrors = []error{bucket.ErrExpired, bucket.ErrNotSubject, bucket.ErrOpNotGranted, bucket.ErrWrongBucket, bucket.ErrBadGrant, bucket.ErrMalformed}

// Stranger is what a peer hears of a refusal: "not found or not
// permitted", with the kind of fault of the grant it sent when that was
// it; never a bucket, a holder or the piece's place.
func Stranger(err error) error {
	for _, g := range grantErrors {
		if errors.Is(err, g) {
			return fmt.Errorf("%w: %w", ErrNotPermitted, g)
		}
	}
	return ErrNotPermitted
}

// ParseIn reads a bucket's text ID and a token for it (either may be
// empty), for the operator; nil when no bucket is named. Both are checked
// for form here, so a malformed one fails before any work; what the token
// allows is the holders' to judge.
func ParseIn(id, token string) (*In, error) {
	if id == "" {
		if token != "" {
			return nil, fmt.Errorf("%w: name the bucket the grant is for", ErrTokenWithoutBucket)
		}
		return nil, nil
	}
	b, err := bucket.ParseID(id)
	if err != nil {
		return nil, err
	}
	if token != "" {
		if _, err := bucket.ParseToken(token); err != nil {
			return nil, err
		}
	}
	return &In{Bucket: b, Token: token}, nil
}

// GuestIn reads a gateway client's bucket (its text ID, or empty) and
// token (or empty). With no bucket named, a token reads in its own
// bucket.
func (n *Node) GuestIn(id, token string) (*In, error) {
	in := &In{Guest: true, Token: token}
	if token != "" {
		t, _, err := n.tokens.parse(token)
		if err != nil {
			return nil, err
		}
		in.Bucket = t.Bucket()
	}
	if id != "" {
		b, err := bucket.ParseID(id)
		if err != nil {
			return nil, err
		}
		in.Bucket = b
	}
	return in, nil
}

// maxParsed bounds the tokens a tokenCache keeps; past it, it starts
// over.
const maxParsed = 1024

// tokenCache keeps tokens parsed: a gateway client presents the same
// one with each of its requests, and parsing a bearer token derives its
// key, which costs more than the rest of a 64 KiB range of a held file.
type tokenCache struct {
	mu sync.Mutex
	m  map[string]parsedToken
}

type parsedToken struct {
	t     bucket.Token
	chain string // t.Chain()
}

// parse is bucket.ParseToken, once per token text, with the token's
// chain. A Token is not to be changed: it is shared.
func (tc *tokenCache) parse(text string) (bucket.Token, string, error) {
	tc.mu.Lock()
	p, ok := tc.m[text]
	tc.mu.Unlock()
	if ok {
		return p.t, p.chain, nil
	}
	t, err := bucket.ParseToken(text)
	if err != nil {
		return t, "", err
	}
	p = parsedToken{t, t.Chain()}
	tc.mu.Lock()
	if tc.m == nil || len(tc.m) >= maxParsed {
		tc.m = make(map[string]parsedToken)
	}
	tc.m[text] = p
	tc.mu.Unlock()
	return p.t, p.chain, nil
}

// reader is who asks: the node's operator (the zero reader), a gateway
// client, another node over libp2p, or another node for a gateway client
// of its own (peer and guest both), whose key then speaks not for it.
type reader struct {
	peer  peer.ID // another node, whose connection proves its key
	guest bool    // a gateway client
}

func (r reader) operator() bool { return r.peer == "" && !r.guest }

// creds are what a read presents.
type creds struct {
	bucket *bucket.ID        // the bucket it reads in
	token  string            // a grant for it
	proof  []byte            // a peer's: its proof, made for this node, that it holds the grant's key
	key    *bucket.PublicKey // a guest's: the key its bearer token's secret proves
}

// mayRead is the rule for reading piece c as who, presenting cr: nil
// allows it, for the bucket it returns (nil: as a piece of no bucket, or
// for the operator). It judges by the store's record of c's buckets; a
// piece the store lacks has none, and its holders judge.
func (n *Node) mayRead(ctx context.Context, who reader, c cid.Cid, cr creds) (*bucket.ID, error) {
	buckets, none, err := n.repo.Store.Reach(c)
	if err != nil {
		return nil, &AccessError{c.String(), fmt.Errorf("%w: %w", errCannotTell, err)}
	}
	if none || len(buckets) == 0 || who.operator() {
		return nil, nil
	}
	var unsure error // a bucket whose record cannot tell now whether it is public
	for _, b := range buckets {
		id := bucket.ID(b)
		rec, err := n.records.current(ctx, id)
		if err == nil && !rec.Private {
			return &id, nil
		}
		if err != nil && unsure == nil {
			unsure = err
		}
	}
	refuse := func(err error) (*bucket.ID, error) {
		if errors.Is(unsure, exchange.ErrBusy) {
			return nil, unsure // it may be public: ask again soon
		}
		return nil, &AccessError{c.String(), err}
	}
	if cr.bucket == nil {
		if unsure != nil {
			return refuse(unsure)
		}
		return refuse(errors.New("in private buckets only; the request names none"))
	}
	// The grant first: what is wrong with it says nothing of c.
	if err := n.granted(ctx, who, *cr.bucket, cr); err != nil {
		return refuse(err)
	}
	if !slices.Contains(buckets, store.Bucket(*cr.bucket)) {
		return refuse(fmt.Errorf("in private buckets only, and not in %s", cr.bucket))
	}
	return cr.bucket, nil
}

// mayReadBucket is the rule for bucket b as a whole, for search and
// paths: anyone's while its current record is public; otherwise as
// granted says.
func (n *Node) mayReadBucket(ctx context.Context, who reader, b bucket.ID, cr creds) error {
	rec, err := n.records.current(ctx, b)
	if err == nil && !rec.Private {
		return nil
	}
	if gerr := n.granted(ctx, who, b, cr); gerr != nil {
		if err != nil && cr.token == "" {
			gerr = err
		}
		if errors.Is(gerr, exchange.ErrBusy) {
			return gerr
		}
		return &AccessError{b.String(), gerr}
	}
	return nil
}

// granted checks that who may read private bucket b: it is the owner's
// own node, or cr holds a grant of get to a key who proves it holds.
func (n *Node) granted(ctx context.Context, who reader, b bucket.ID, cr creds) error {
	rec, ok := n.records.get(b) // any version: its owner never changes
	if !ok {
		var err error
		if rec, err = n.records.current(ctx, b); err != nil && rec.Seq == 0 {
			return err
		}
	}
	req := bucket.Request{Bucket: b, Owner: rec.Owner, Op: bucket.OpGet, Now: time.Now()}
	if who.operator() {
		return nil
	}
	if who.peer != "" && len(cr.proof) > 0 {
		req.Proof = &bucket.Proof{Holder: []byte(n.host.ID()), Requester: []byte(who.peer), Sig: cr.proof}
	}
	switch {
	case who.guest:
		// Only a key a bearer token's secret proves: a grant bound to a
		// node's key serves no gateway client, on its node or any other.
		req.Requester = cr.key
	default:
		acct, err := repo.AccountOfPeer(who.peer)
		if err != nil {
			return err
		}
		if acct == rec.Owner {
			return nil
		}
		req.Requester = &acct
	}
	if cr.token == "" {
		return fmt.Errorf("%w for bucket %s", bucket.ErrNoGrant, b)
	}
	return n.verifier.Verify(cr.token, req)
}

// serveAccess is the exchange server's rule: mayRead for the peer.
func (n *Node) serveAccess(r exchange.AccessRequest) ([]byte, error) {
	ctx, cancel := context.WithTimeout(n.ctx, recordWait)
	defer cancel()
	via, err := n.mayRead(ctx, reader{peer: r.Peer, guest: r.Guest}, r.CID, peerCreds(r.Bucket, r.Token, r.Proof))
	if err != nil {
		if errors.Is(err, exchange.ErrBusy) {
			return nil, err
		}
		n.log.Debug("exchange refused", "peer", r.Peer, "cid", r.CID, "err", err)
		return nil, Stranger(err)
	}
	if via == nil {
		return nil, nil
	}
	return via[:], nil
}

// searchAccess is the search server's rule: mayReadBucket for peer p.
func (n *Node) searchAccess(p peer.ID, req search.Request) error {
	ctx, cancel := context.WithTimeout(n.ctx, recordWait)
	defer cancel()
	cr := peerCreds(req.Bucket, req.Token, req.Proof)
	if cr.bucket == nil {
		return ErrNotPermitted
	}
	if _, known := n.records.get(*cr.bucket); !known {
		// A holder of a bucket's files keeps its record: a bucket this
		// node has none of, it holds nothing of, and it does not look
		// up any ID a peer sends.
		return ErrNotPermitted
	}
	if err := n.mayReadBucket(ctx, reader{peer: p, guest: req.Guest}, *cr.bucket, cr); err != nil {
		n.log.Debug("search refused", "peer", p, "bucket", cr.bucket, "err", err)
		if errors.Is(err, exchange.ErrBusy) {
			return fmt.Errorf("%w: try again", ErrNotPermitted)
		}
		return Stranger(err)
	}
	return nil
}

func peerCreds(b, token, proof []byte) creds {
	cr := creds{token: string(token), proof: proof}
	if len(b) == len(bucket.ID{}) {
		id := bucket.ID(b)
		cr.bucket = &id
	}
	return cr
}

// presented is what a read in a bucket presents: the grant its requests
// to holders carry (nil: none), and its credentials for the local rule.
type presented struct {
	grant *exchange.Grant
	creds creds
	rec   bucket.Record
}

// present prepares what a read in in presents, checking the grant here
// first, so that what is wrong with it is said before anything is asked
// of holders, and in full to the operator. For the operator, a token
// given or, without one, a grant the node issues itself with the owner's
// key; for a guest, only a bearer token it gave.
func (n *Node) present(ctx context.Context, in *In) (presented, error) {
	r, err := n.record(ctx, in)
	if err != nil {
		return presented{}, err
	}
	b := r.Bucket
	pr := presented{rec: r, creds: creds{bucket: &b}, grant: &exchange.Grant{Bucket: b[:], Guest: in.Guest}}
	text := in.Token
	if !in.Guest {
		if text, err = n.repo.Grant(r, bucket.OpGet, in.Token); err != nil {
			return pr, err
		}
	}
	if text == "" {
		return pr, nil
	}
	t, chain, err := n.tokens.parse(text)
	if err != nil {
		return pr, err
	}
	var key bucket.PrivateKey
	self := false
	switch {
	case t.Key != nil:
		key = *t.Key
	case in.Guest:
		return pr, &AccessError{b.String(), fmt.Errorf("%w: the grant is bound to the key %s, and serves only that key's own node: a gateway client needs a bearer grant", bucket.ErrNotSubject, t.Subject())}
	default:
		if key, self, err = n.repo.GrantKey(t); err != nil {
			return pr, err
		}
	}
	pub := key.Public()
	if err := n.verifier.Verify(text, bucket.Request{Bucket: b, Owner: r.Owner, Op: bucket.OpGet, Requester: &pub, Now: time.Now()}); err != nil {
		if in.Guest {
			err = &AccessError{b.String(), err}
		}
		return pr, err
	}
	pr.creds.token, pr.creds.key = text, &pub
	pr.grant.Token = []byte(chain)
	if !self { // the node's own key is proven by its connections
		me := []byte(n.host.ID())
		pr.grant.Prove = func(holder peer.ID) ([]byte, error) { return bucket.Prove(key, b, []byte(holder), me) }
	}
	return pr, nil
}

// record looks up the record of in's bucket, from the repo or the
// cluster's DHT, and checks that it lives in the node's cluster.
func (n *Node) record(ctx context.Context, in *In) (bucket.Record, error) {
	r, err := n.knownBucket(ctx, in.Bucket)
	if err == nil && r.Cluster != n.Cluster() {
		err = fmt.Errorf("%w: bucket %s lives in cluster %q, this node in %q", ErrOtherCluster, r.Bucket, r.Cluster, n.Cluster())
	}
	return r, err
}
