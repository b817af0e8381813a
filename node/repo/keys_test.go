package repo_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node/repo"
)

// TestSelfIsTheNodeIdentity: the account "self" is the node's libp2p
// identity key, so a grant to it is honoured for the node's connections.
func TestSelfIsTheNodeIdentity(t *testing.T) {
	r := openRepo(t)
	path := r.Path
	raw, err := r.Identity.GetPublic().Raw()
	if err != nil {
		t.Fatal(err)
	}
	want, err := bucket.PublicKeyFromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := repo.Keys(path)
	if err != nil {
		t.Fatal(err)
	}
	self, err := ks.Get(repo.SelfKey)
	if err != nil || self.Public() != want {
		t.Fatalf("self is %v (%v), the identity %v", self.Public(), err, want)
	}
	if _, err := ks.Import("x", "ddcsk1"+"A"); !errors.Is(err, bucket.ErrBadKey) {
		t.Fatalf("import of a short text: %v", err)
	}
	if _, err := repo.Keys(filepath.Join(t.TempDir(), "none")); !errors.Is(err, repo.ErrNotInitialized) {
		t.Fatalf("keystore of no repo: %v", err)
	}
}
