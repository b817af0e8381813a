package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
)

// bucketFlags adds -b and --token to a command that works in a bucket.
func (e *env) bucketFlags(c *cobra.Command) {
	c.Flags().StringVarP(&e.bucket, "bucket", "b", "", "work in this bucket (its ID)")
	c.Flags().StringVar(&e.token, "token", "", "a grant token for the bucket; - reads it from stdin (default: none, or one issued with the owner's key when this repo holds it)")
}

// in is the bucket the flags name, or nil. A --token of - is read from
// stdin, so it stays out of the process list and shell history.
func (e *env) in() (*node.In, error) {
	if e.bucket == "" && e.token != "" {
		return nil, usageErr(errors.New("--token needs -b: name the bucket the grant is for"))
	}
	if e.token == "-" {
		b, err := io.ReadAll(io.LimitReader(e.stdin, 8<<10))
		if err != nil {
			return nil, fmt.Errorf("--token -: %w", err)
		}
		e.token = strings.TrimSpace(string(b))
	}
	in, err := node.ParseIn(e.bucket, e.token)
	if err != nil {
		return nil, usageErr(fmt.Errorf("-b/--token: %w", err))
	}
	return in, nil
}

// putOffline stores in into the repo, in the bucket the flags name: the
// repo must keep the bucket's record, and hold its owner's key or a put
// grant.
//
// With at, the file in is is put in place (repo.PutInPlace) instead.
func (e *env) putOffline(ctx context.Context, r *repo.Repo, in io.Reader, opt pieces.BuildOptions, at *os.File) (pieces.BuildResult, error) {
	put := func(b *bucket.ID) (pieces.BuildResult, error) {
		if at != nil {
			return r.PutInPlace(ctx, at.Name(), at, opt, b, nil)
		}
		return r.PutIn(ctx, in, opt, b, nil)
	}
	b, err := e.in()
	if err != nil || b == nil {
		if err != nil {
			return pieces.BuildResult{}, err
		}
		return put(nil)
	}
	bs, err := repo.Buckets(r.Path)
	if err != nil {
		return pieces.BuildResult{}, err
	}
	rec, err := bs.Get(b.Bucket)
	if err != nil {
		return pieces.BuildResult{}, fmt.Errorf("%w (offline, only records this repo keeps are known; start the node to find it)", err)
	}
	if err := r.Authorize(rec, bucket.OpPut, b.Token); err != nil {
		return pieces.BuildResult{}, err
	}
	return put(&rec.Bucket)
}
