package repo_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node/repo"
)

// TestBucketRecordsKeepTheNewest: a repo keeps the newest valid version of
// each bucket record it has seen, across reopening, and refuses a file
// that was tampered with.
func TestBucketRecordsKeepTheNewest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "repo")
	if _, err := repo.Init(path, repo.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	owner, _ := bucket.NewKey()
	thief, _ := bucket.NewKey()
	r1, _ := bucket.NewRecord(owner, "default", false, "one")
	r2 := r1
	r2.Seq, r2.Label = 2, "two"
	if err := r2.Sign(owner); err != nil {
		t.Fatal(err)
	}
	forged := r2
	forged.Seq = 9
	forged.Sig = thief.Sign([]byte("x"))

	bs, _ := repo.Buckets(path)
	for _, step := range []struct {
		r    bucket.Record
		kept bool
		err  bool
	}{{r1, true, false}, {r2, true, false}, {r1, false, false}, {forged, false, true}} {
		kept, err := bs.Keep(step.r)
		if kept != step.kept || (err != nil) != step.err {
			t.Fatalf("keep seq %d: kept %v, %v; want kept %v, error %v", step.r.Seq, kept, err, step.kept, step.err)
		}
	}
	again, _ := repo.Buckets(path)
	if got, err := again.Get(r1.Bucket); err != nil || got.Seq != 2 || got.Label != "two" {
		t.Fatalf("after reopening: %+v, %v", got, err)
	}
	if all, err := again.List(); err != nil || len(all) != 1 {
		t.Fatalf("list: %d records, %v", len(all), err)
	}
	other, _ := bucket.NewRecord(owner, "default", false, "")
	if _, err := again.Get(other.Bucket); !errors.Is(err, repo.ErrNoBucket) {
		t.Fatalf("an unknown bucket: %v", err)
	}
	file := filepath.Join(path, "buckets", r1.Bucket.String())
	b, _ := os.ReadFile(file)
	b[len(b)-1] ^= 1
	os.WriteFile(file, b, 0o600)
	if _, err := again.Get(r1.Bucket); !errors.Is(err, bucket.ErrBadRecord) {
		t.Fatalf("a tampered record file: %v", err)
	}
}
