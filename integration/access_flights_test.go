package integration

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/pieces"
)

// TestSharedFetchesKeepTheirGrant: while a gateway read with a valid
// grant holds the pieces of a private file it fetched for other reads (it
// has not closed, so the node has not committed them), reads of the same
// file on that node with no grant, with a wrong grant and in no bucket
// get none of it; another with a valid grant reads it whole.
func TestSharedFetchesKeepTheirGrant(t *testing.T) {
	owner := startNode(t, nil)
	rec, key := privateBucket(t, owner, "")
	data := make([]byte, 6<<20)
	io.ReadFull(content(93, int64(len(data))), data)
	res, err := owner.PutIn(context.Background(), bytes.NewReader(data), pieces.DefaultBuildOptions(), &node.In{Bucket: rec.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	gw := startNode(t, nil, owner)
	waitFor(t, "the owner to announce the file", 30*time.Second, func() bool {
		_, pending := owner.Announcing()
		return pending == 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitFor(t, "the owner to publish its bucket", 30*time.Second, func() bool {
		_, err := owner.PublishBucket(ctx, rec.Bucket)
		return err == nil
	})
	grant := func(k bucket.PrivateKey) string {
		g, err := bucket.NewGrant(k, rec.Bucket, nil, bucket.OpGet, time.Now().Add(time.Hour), false, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return g.String()
	}
	other, err := bucket.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	read := func(in *node.In) ([]byte, error) {
		r := gw.NewReaderIn(res.Root, in)
		r.Share() // as the gateway's reads do
		if err := r.Open(ctx); err != nil {
			return nil, errors.Join(err, r.Close())
		}
		b, err := io.ReadAll(r)
		return b, errors.Join(err, r.Close())
	}

	valid := &node.In{Bucket: rec.Bucket, Token: grant(key), Guest: true}
	holding := gw.NewReaderIn(res.Root, valid)
	holding.Share()
	if err := holding.Open(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(holding)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the read with a valid grant: %d bytes, %v", len(got), err)
	}
	for name, in := range map[string]*node.In{
		"no grant":    {Bucket: rec.Bucket, Guest: true},
		"wrong grant": {Bucket: rec.Bucket, Token: grant(other), Guest: true},
		"no bucket":   {Guest: true},
	} {
		if b, err := read(in); err == nil || len(b) > 0 {
			t.Errorf("a read with %s, beside one with a valid grant: %d bytes, %v; want refused", name, len(b), err)
		}
	}
	if b, err := read(&node.In{Bucket: rec.Bucket, Token: grant(key), Guest: true}); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("a second read with a valid grant: %d bytes, %v", len(b), err)
	}
	if err := holding.Close(); err != nil {
		t.Fatal(err)
	}
}
