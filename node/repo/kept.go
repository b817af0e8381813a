package repo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/bucket"
)

// keptDir holds, a file a bucket, the grant this node keeps the bucket's
// files by: the one a push brought, for passing on (delegated) when this
// node pushes them again to replace a lost holder.
const keptDir = "kept-grants"

// KeepGrant keeps token, a grant to this node that a push of a file of
// bucket b brought, unless the grant kept already lasts longer.
func (r *Repo) KeepGrant(b bucket.ID, token string) error {
	t, err := bucket.ParseToken(token)
	if err != nil {
		return err
	}
	if old, ok, err := r.KeptGrant(b); err == nil && ok && !expiry(old).Before(expiry(t)) {
		return nil
	}
	dir := filepath.Join(r.Path, keptDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keep the grant of bucket %s: %w", b, err)
	}
	path := filepath.Join(dir, b.String())
	if err := writeFileAtomic(path, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("keep the grant of bucket %s: %w", b, err)
	}
	return nil
}

// KeptGrant returns the grant kept for bucket b, if there is one that has
// not expired.
func (r *Repo) KeptGrant(b bucket.ID) (bucket.Token, bool, error) {
	raw, err := os.ReadFile(filepath.Join(r.Path, keptDir, b.String()))
	if errors.Is(err, fs.ErrNotExist) {
		return bucket.Token{}, false, nil
	}
	if err != nil {
		return bucket.Token{}, false, err
	}
	t, err := bucket.ParseToken(strings.TrimSpace(string(raw)))
	if err != nil {
		return bucket.Token{}, false, fmt.Errorf("the grant kept for bucket %s: %w", b, err)
	}
	return t, time.Now().Before(expiry(t)), nil
}

// expiry is when the chain t ends: its last grant's end, which no earlier
// one may precede.
func expiry(t bucket.Token) time.Time {
	if len(t.Links) == 0 {
		return time.Time{}
	}
	return t.Links[len(t.Links)-1].Expires
}

// PassOn grants subject ops in bucket b, to the kept grant's end, by
// delegating the grant kept for b: "" when none is kept. It fails when
// that grant may not be delegated, or its chain is at its longest.
func (r *Repo) PassOn(b bucket.ID, subject bucket.PublicKey, ops bucket.Ops) (string, error) {
	t, ok, err := r.KeptGrant(b)
	if err != nil || !ok {
		return "", err
	}
	key, _, err := r.GrantKey(t)
	if err != nil {
		return "", err
	}
	d, err := t.Delegate(key, &subject, ops, expiry(t), true, time.Now())
	if err != nil {
		return "", fmt.Errorf("pass on the grant kept for bucket %s: %w", b, err)
	}
	return d.String(), nil
}

// tombstoneDir holds, a folder a bucket and a file a root, the tombstones
// of files deleted from buckets this node keeps files of: it answers
// checks with them, so a keeper that was away drops its copy instead of
// pushing it back.
const tombstoneDir = "tombstones"

// KeepTombstone keeps t, verified already.
func (r *Repo) KeepTombstone(t bucket.Tombstone) error {
	dir := filepath.Join(r.Path, tombstoneDir, t.Bucket.String())
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keep the tombstone of %s: %w", t.Root, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, t.Root.String()), t.Encode(), 0o600); err != nil {
		return fmt.Errorf("keep the tombstone of %s: %w", t.Root, err)
	}
	return nil
}

// Tombstone returns the tombstone kept for root in bucket b, if any.
func (r *Repo) Tombstone(b bucket.ID, root cid.Cid) (bucket.Tombstone, bool, error) {
	raw, err := os.ReadFile(filepath.Join(r.Path, tombstoneDir, b.String(), root.String()))
	if errors.Is(err, fs.ErrNotExist) {
		return bucket.Tombstone{}, false, nil
	}
	if err != nil {
		return bucket.Tombstone{}, false, err
	}
	t, err := bucket.DecodeTombstone(raw)
	if err != nil {
		return t, false, fmt.Errorf("the tombstone kept for %s: %w", root, err)
	}
	return t, true, nil
}
