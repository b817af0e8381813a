package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node/api"
	"github.com/ddc-project/ddc/node/repo"
)

func newBucketCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "bucket",
		Short: "Create and describe buckets: owned by an account, public or private",
		Long: `A bucket's ID (ddcb...) derives from its owner's key; its record (owner,
cluster, access, label, version) is signed by the owner and published in the
cluster's DHT. The repo keeps the newest record it has seen of each bucket;
a running node publishes them again every 12 hours.`,
	}
	c.AddCommand(newBucketCreateCmd(e), newBucketLsCmd(e), newBucketShowCmd(e), newBucketSetCmd(e), newBucketGrantCmd(e))
	return c
}

func newBucketCreateCmd(e *env) *cobra.Command {
	var private bool
	var replicas int
	var label, keyName string
	c := &cobra.Command{
		Use:   "create",
		Short: "Make a bucket and print its ID",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := repo.Identity(e.repoPath)
			if err != nil {
				return err
			}
			ks, err := repo.Keys(e.repoPath)
			if err != nil {
				return err
			}
			owner, err := ks.Get(keyName)
			if err != nil {
				return err
			}
			if err := bucket.CheckLabel(label); err != nil {
				return usageErr(fmt.Errorf("--name: %w", err))
			}
			r, err := bucket.NewRecord(owner, cfg.Network.Cluster, private, label)
			if err != nil {
				return err
			}
			if replicas != 1 {
				r.Replicas = replicas
				if err := r.Sign(owner); err != nil {
					return usageErr(fmt.Errorf("--replicas: %w", err))
				}
			}
			if err := e.keepAndPublish(cmd.Context(), r); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, r.Bucket)
			return nil
		},
	}
	c.Flags().BoolVar(&private, "private", false, "serve the bucket's files only to holders of a grant")
	c.Flags().IntVar(&replicas, "replicas", 1, fmt.Sprintf("the nodes of the cluster that keep each file, 1 (the uploader's) to %d", bucket.MaxReplicas))
	c.Flags().StringVar(&label, "name", "", "a label for people (at most 128 bytes)")
	c.Flags().StringVar(&keyName, "key", repo.SelfKey, "the owner's key (see 'ddc key ls')")
	return c
}

// keepAndPublish keeps r in the repo and, with a node running, has the
// node publish it now; without one, the node publishes it when it runs.
func (e *env) keepAndPublish(ctx context.Context, r bucket.Record) error {
	bs, err := repo.Buckets(e.repoPath)
	if err != nil {
		return err
	}
	if _, err := bs.Keep(r); err != nil {
		return err
	}
	cl, err := e.daemon(ctx)
	if err != nil {
		return err
	}
	if cl == nil {
		fmt.Fprintf(e.stderr, "ddc: no node running: bucket %s is published when one runs on this repo\n", r.Bucket)
		return nil
	}
	if _, err := cl.PublishBucket(ctx, r.Bucket); err != nil {
		// Kept, and served from the node's own DHT store: a lone node
		// has no one to publish to yet, and republishes every 12 hours.
		fmt.Fprintf(e.stderr, "ddc: bucket %s is kept in the repo but not yet published: %v\n", r.Bucket, err)
	}
	return nil
}

func newBucketLsCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "ls",
		Short: "List the buckets whose records the repo keeps",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			bs, err := repo.Buckets(e.repoPath)
			if err != nil {
				return err
			}
			rs, err := bs.List()
			if err != nil {
				return err
			}
			infos := make([]api.BucketInfo, len(rs))
			for i, r := range rs {
				infos[i] = api.BucketInfoOf(r)
			}
			if e.json {
				return writeJSON(e.stdout, infos)
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			for _, b := range infos {
				fmt.Fprintf(w, "%s\t%s\t%s\t%q\n", b.ID, b.Access, b.Cluster, b.Label)
			}
			return w.Flush()
		},
	}
	e.jsonFlag(c)
	return c
}

func newBucketShowCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "show ID",
		Short: "Describe a bucket: the newest record the repo keeps or the node finds",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := e.findBucket(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if e.json {
				return writeJSON(e.stdout, r)
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "bucket\t%s\nowner\t%s\ncluster\t%s\naccess\t%s\nlabel\t%q\nreplicas\t%d\nversion\t%d\n", r.ID, r.Owner, r.Cluster, r.Access, r.Label, r.Replicas, r.Seq)
			return w.Flush()
		},
	}
	e.jsonFlag(c)
	return c
}

// findBucket asks the running node (which looks in the DHT too), or reads
// the repo's record offline.
func (e *env) findBucket(ctx context.Context, arg string) (api.BucketInfo, error) {
	id, err := bucket.ParseID(arg)
	if err != nil {
		return api.BucketInfo{}, usageErr(err)
	}
	cl, err := e.daemon(ctx)
	if err != nil {
		return api.BucketInfo{}, err
	}
	if cl != nil {
		return cl.Bucket(ctx, id)
	}
	bs, err := repo.Buckets(e.repoPath)
	if err != nil {
		return api.BucketInfo{}, err
	}
	r, err := bs.Get(id)
	return api.BucketInfoOf(r), err
}

func newBucketSetCmd(e *env) *cobra.Command {
	var private, public bool
	var replicas int
	var label, keyName string
	c := &cobra.Command{
		Use:   "set ID (--private | --public | --name LABEL | --replicas R)...",
		Short: "Publish a new version of a bucket's record, signed by its owner",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			changeName, changeReplicas := cmd.Flags().Changed("name"), cmd.Flags().Changed("replicas")
			switch {
			case private && public:
				return usageErr(errors.New("bucket set: --private and --public together"))
			case !private && !public && !changeName && !changeReplicas:
				return usageErr(errors.New("bucket set: nothing to change (--private, --public, --name or --replicas)"))
			}
			if _, err := e.findBucket(cmd.Context(), args[0]); err != nil { // the newest version, kept
				return err
			}
			id, _ := bucket.ParseID(args[0])
			bs, err := repo.Buckets(e.repoPath)
			if err != nil {
				return err
			}
			r, err := bs.Get(id)
			if err != nil {
				return err
			}
			owner, err := e.ownerKey(r.Owner, keyName)
			if err != nil {
				return err
			}
			r.Seq++
			r.Private = private || (r.Private && !public)
			if changeName {
				r.Label = label
			}
			if changeReplicas {
				r.Replicas = replicas
			}
			if err := r.Sign(owner); err != nil {
				return usageErr(err)
			}
			if err := e.keepAndPublish(cmd.Context(), r); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s version %d\n", r.Bucket, r.Seq)
			return nil
		},
	}
	c.Flags().BoolVar(&private, "private", false, "serve the files only to holders of a grant")
	c.Flags().BoolVar(&public, "public", false, "serve the files to anyone")
	c.Flags().StringVar(&label, "name", "", "a new label")
	c.Flags().IntVar(&replicas, "replicas", 1, fmt.Sprintf("a new replication factor, 1 to %d", bucket.MaxReplicas))
	c.Flags().StringVar(&keyName, "key", "", "the owner's key (default: the one in the keystore that owns the bucket)")
	return c
}

// ownerKey is the keystore's key named name, or when name is empty the
// one whose account is owner.
func (e *env) ownerKey(owner bucket.PublicKey, name string) (bucket.PrivateKey, error) {
	ks, err := repo.Keys(e.repoPath)
	if err != nil {
		return bucket.PrivateKey{}, err
	}
	if name != "" {
		return ks.Get(name)
	}
	key, ok, err := ks.Owned(owner)
	if err == nil && !ok {
		err = fmt.Errorf("%w: the owner %s of this bucket is not in this repo's keystore", repo.ErrNoKey, owner)
	}
	return key, err
}
