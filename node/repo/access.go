package repo

import (
	"errors"
	"fmt"
	"time"

	"github.com/ddc-project/ddc/bucket"
)

// ErrDenied means a bucket operation without a grant that allows it.
var ErrDenied = errors.New("denied")

// ownerGrantLife is how long a grant the repo issues itself with an
// owner's key lives: long enough for one transfer.
const ownerGrantLife = time.Hour

// Grant returns the token this repo's node presents for op in the bucket
// of rec. A token given is returned as it is, for the holder to judge.
// Without one, when the keystore holds the owner's key, it is a fresh
// grant of op from the owner to the node's own key; otherwise none ("").
func (r *Repo) Grant(rec bucket.Record, op bucket.Ops, token string) (string, error) {
	if token != "" {
		return token, nil
	}
	self, err := r.Account()
	if err != nil {
		return "", err
	}
	return r.GrantTo(rec, self.Public(), op, ownerGrantLife, false)
}

// Authorize checks that this repo's user may do op in the bucket of rec:
// the keystore holds the owner's key, or token grants op to a key this
// repo holds (see GrantKey).
func (r *Repo) Authorize(rec bucket.Record, op bucket.Ops, token string) error {
	ks, err := Keys(r.Path)
	if err != nil {
		return err
	}
	if _, ok, err := ks.Owned(rec.Owner); err != nil || ok {
		return err
	}
	if token == "" {
		return fmt.Errorf("%w: bucket %s: no grant to %s (this repo holds no key of its owner %s; pass a token)", ErrDenied, rec.Bucket, op, rec.Owner)
	}
	t, err := bucket.ParseToken(token)
	if err != nil {
		return err
	}
	key, _, err := r.GrantKey(t)
	if err != nil {
		return err
	}
	pub := key.Public()
	return t.Verify(bucket.Request{Bucket: rec.Bucket, Owner: rec.Owner, Op: op, Requester: &pub, Now: time.Now()})
}

// GrantKey returns the key token t is to, when this repo can act as it:
// a bearer token's own key, the node's identity (self: the node's
// connections prove it, so its requests need no proof), or a key of the
// keystore.
func (r *Repo) GrantKey(t bucket.Token) (key bucket.PrivateKey, self bool, err error) {
	if t.Key != nil {
		return *t.Key, false, nil
	}
	id, err := r.Account()
	if err != nil {
		return key, false, err
	}
	subject := t.Subject()
	if id.Public() == subject {
		return id, true, nil
	}
	ks, err := Keys(r.Path)
	if err != nil {
		return key, false, err
	}
	key, ok, err := ks.Owned(subject)
	if err == nil && !ok {
		err = fmt.Errorf("%w: the grant on bucket %s is for %s, a key this repo does not hold", bucket.ErrNotSubject, t.Bucket(), subject)
	}
	return key, false, err
}

// Account is the node's identity as an account.
func (r *Repo) Account() (bucket.PrivateKey, error) { return AccountOf(r.Identity) }

// GrantTo issues, with the owner's key when the keystore holds it, a
// grant of ops in rec's bucket to the key subject for life, which subject
// may pass on when delegate: what a node gives another it asks to keep a
// file of the bucket. It returns "" when the keystore lacks the owner's
// key.
func (r *Repo) GrantTo(rec bucket.Record, subject bucket.PublicKey, ops bucket.Ops, life time.Duration, delegate bool) (string, error) {
	ks, err := Keys(r.Path)
	if err != nil {
		return "", err
	}
	owner, ok, err := ks.Owned(rec.Owner)
	if err != nil || !ok {
		return "", err
	}
	now := time.Now()
	t, err := bucket.NewGrant(owner, rec.Bucket, &subject, ops, now.Add(life), delegate, now)
	if err != nil {
		return "", err
	}
	return t.String(), nil
}
