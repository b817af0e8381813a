package repo_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node/repo"
)

func openRepo(t *testing.T) *repo.Repo {
	t.Helper()
	path := filepath.Join(t.TempDir(), "repo")
	if _, err := repo.Init(path, repo.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestKeptGrantPassedOn: a keeper keeps the grant a push brought and
// passes it on, delegated, to the node it pushes to next, whose put then
// verifies; the longest grant is the one kept, one that may not be
// delegated is not passed on, and a chain stops at its longest.
func TestKeptGrantPassedOn(t *testing.T) {
	owner, _ := bucket.NewKey()
	rec, _ := bucket.NewRecord(owner, "default", false, "")
	a, b := openRepo(t), openRepo(t)
	account := func(r *repo.Repo) bucket.PublicKey {
		k, err := r.Account()
		if err != nil {
			t.Fatal(err)
		}
		return k.Public()
	}
	const ops = bucket.OpGet | bucket.OpPut
	now := time.Now()
	grant := func(life time.Duration, delegate bool) string {
		pub := account(a)
		tok, err := bucket.NewGrant(owner, rec.Bucket, &pub, ops, now.Add(life), delegate, now)
		if err != nil {
			t.Fatal(err)
		}
		return tok.String()
	}
	if tok, err := a.PassOn(rec.Bucket, account(b), ops); tok != "" || err != nil {
		t.Fatalf("nothing kept, passed on %q, %v", tok, err)
	}
	if err := a.KeepGrant(rec.Bucket, grant(48*time.Hour, true)); err != nil {
		t.Fatal(err)
	}
	if err := a.KeepGrant(rec.Bucket, grant(time.Hour, false)); err != nil { // shorter: not kept
		t.Fatal(err)
	}
	tok, err := a.PassOn(rec.Bucket, account(b), ops)
	if err != nil || tok == "" {
		t.Fatalf("pass on: %q, %v", tok, err)
	}
	if err := b.Authorize(rec, bucket.OpPut, tok); err != nil {
		t.Fatalf("the passed-on grant does not let the next keeper put: %v", err)
	}
	// The next keeper keeps it and passes it on in turn, until the chain
	// is at its longest.
	from := b
	var last error
	for range bucket.MaxChain {
		if err := from.KeepGrant(rec.Bucket, tok); err != nil {
			t.Fatal(err)
		}
		next := openRepo(t)
		if tok, last = from.PassOn(rec.Bucket, account(next), ops); last != nil {
			break
		}
		from = next
	}
	if last == nil {
		t.Fatalf("a chain of %d grants passed on still", bucket.MaxChain+1)
	}

	c := openRepo(t)
	pub := account(c)
	plain, _ := bucket.NewGrant(owner, rec.Bucket, &pub, ops, now.Add(time.Hour), false, now)
	if err := c.KeepGrant(rec.Bucket, plain.String()); err != nil {
		t.Fatal(err)
	}
	if tok, err := c.PassOn(rec.Bucket, account(b), ops); err == nil {
		t.Fatalf("a grant that may not be delegated was passed on: %q", tok)
	}
}
