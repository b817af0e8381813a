package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node/api"
	"github.com/ddc-project/ddc/pieces"
)

func newNameCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "name",
		Short: "Publish, resolve and list the versions of names: signed, versioned pointers to CIDs",
		Long: `A name maps to a CID, and each publish makes a new version that links the
one before. A bucket's name (-b) is signed by the bucket's owner or by a
holder of a grant of put (--token); a name without -b is an account's,
signed by a key of this repo (--key, default the node's own) and written
by others as did:key:z6Mk…/NAME. Records live in the cluster's DHT; the
nodes that hold the bucket (or own the account) keep and republish them,
so a name outlives its publisher being away. A leading / is dropped: the
name of a file put with --path /talks/a.mp4 is talks/a.mp4. Needs a
running node.`,
	}
	c.AddCommand(newNamePublishCmd(e), newNameResolveCmd(e), newNameLogCmd(e))
	return c
}

// nameDaemon reads a name argument and connects to the daemon that
// publishes and resolves it.
func (e *env) nameDaemon(ctx context.Context, arg, key string) (api.NameArgs, *api.Client, error) {
	a, err := e.nameArgs(arg, key)
	if err != nil {
		return api.NameArgs{}, nil, err
	}
	cl, err := e.needDaemon(ctx)
	return a, cl, err
}

// nameArgs reads NAME: "did:key:…/name" names an account's name.
func (e *env) nameArgs(arg, key string) (api.NameArgs, error) {
	a := api.NameArgs{Name: arg, Key: key}
	if rest, ok := strings.CutPrefix(arg, "did:key:"); ok {
		acct, name, found := strings.Cut(rest, "/")
		if !found || e.bucket != "" {
			return a, usageErr(fmt.Errorf("name %.80q: want did:key:…/NAME, without -b", arg))
		}
		a.Account, a.Name = "did:key:"+acct, name
	}
	if err := bucket.CheckName(bucket.NormalizeName(a.Name)); err != nil {
		return a, usageErr(err)
	}
	if a.Account != "" {
		if _, err := bucket.ParsePublicKey(a.Account); err != nil {
			return a, usageErr(err)
		}
	}
	return a, nil
}

func newNamePublishCmd(e *env) *cobra.Command {
	var key string
	var seq uint64
	c := &cobra.Command{
		Use:   "publish [-b BUCKET] NAME CID",
		Short: "Publish a new version of NAME mapping to CID",
		Long: `Sign and publish a new version of NAME, mapping to CID: the next sequence
number (or --seq, which must be above every version the node knows), linking
the version before. A publish by a key without a grant of put in the bucket,
or of a sequence number not above the name's, is refused.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, cl, err := e.nameDaemon(cmd.Context(), args[0], key)
			if err != nil {
				return err
			}
			p, err := cl.PublishName(cmd.Context(), a, args[1], seq, false)
			if err != nil {
				return fmt.Errorf("name publish %s: %w", args[0], err)
			}
			return e.showPublished(p)
		},
	}
	c.Flags().StringVar(&key, "key", "", "for an account's name: the key that signs it (default the node's own, self)")
	c.Flags().Uint64Var(&seq, "seq", 0, "the version's sequence number (default: the next)")
	e.bucketFlags(c)
	e.jsonFlag(c)
	return c
}

func (e *env) showPublished(p api.NamePublished) error {
	if p.Warning != "" {
		fmt.Fprintf(e.stderr, "ddc: name %s: %s\n", p.Name, p.Warning)
	}
	if e.json {
		return writeJSON(e.stdout, p)
	}
	_, err := fmt.Fprintf(e.stdout, "published %s version %d: %s\n", p.Name, p.Seq, p.CID)
	return err
}

func newNameResolveCmd(e *env) *cobra.Command {
	var key string
	var fresh bool
	c := &cobra.Command{
		Use:   "resolve [-b BUCKET] NAME",
		Short: "Print the CID the newest version of NAME maps to",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, cl, err := e.nameDaemon(cmd.Context(), args[0], key)
			if err != nil {
				return err
			}
			i, err := cl.ResolveName(cmd.Context(), a, fresh)
			if err != nil {
				return fmt.Errorf("name resolve %s: %w", args[0], err)
			}
			if e.json {
				return writeJSON(e.stdout, i)
			}
			_, err = fmt.Fprintln(e.stdout, i.CID)
			return err
		},
	}
	c.Flags().StringVar(&key, "key", "", "for an account's name: whose (a key of this repo; default the node's own)")
	c.Flags().BoolVar(&fresh, "fresh", false, "ask the cluster's DHT, not the node's cache or its kept copy")
	e.bucketFlags(c)
	e.jsonFlag(c)
	return c
}

func newNameLogCmd(e *env) *cobra.Command {
	var key string
	var prune bool
	c := &cobra.Command{
		Use:   "log [-b BUCKET] NAME",
		Short: "List the versions of NAME, newest first, with time, signer and parent",
		Long: `List the versions of NAME, newest first: sequence number, time, signer,
CID and the record of the version before. --prune cuts the history: it
publishes the current CID again as a version that links none, and lets this
node's copies of the earlier versions go ('ddc repo gc' reclaims them).
Other holders keep theirs until they prune too or stop holding the bucket.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, cl, err := e.nameDaemon(cmd.Context(), args[0], key)
			if err != nil {
				return err
			}
			if prune {
				return e.pruneName(cmd.Context(), cl, a)
			}
			l, err := cl.NameLog(cmd.Context(), a)
			if err != nil {
				return fmt.Errorf("name log %s: %w", args[0], err)
			}
			if e.json {
				err = writeJSON(e.stdout, l)
			} else {
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "SEQ\tTIME\tSIGNER\tCID\tPREV")
				for _, v := range l.Versions {
					prev := v.Prev
					if prev == "" {
						prev = "-"
					}
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", v.Seq, v.Time.Format(time.RFC3339), v.Signer, v.CID, prev)
				}
				err = w.Flush()
			}
			if err == nil && l.Error != "" {
				err = fmt.Errorf("name log %s: the history ends early: %s", args[0], l.Error)
			}
			return err
		},
	}
	c.Flags().StringVar(&key, "key", "", "for an account's name: whose (a key of this repo; default the node's own)")
	c.Flags().BoolVar(&prune, "prune", false, "cut the history at the current version and let this node's copies of the older ones go")
	e.bucketFlags(c)
	e.jsonFlag(c)
	return c
}

// pruneName publishes the current CID of a again as a version with no
// parent.
func (e *env) pruneName(ctx context.Context, cl *api.Client, a api.NameArgs) error {
	cur, err := cl.ResolveName(ctx, a, false)
	if err != nil {
		return fmt.Errorf("name log --prune %s: %w", a.Name, err)
	}
	p, err := cl.PublishName(ctx, a, cur.CID, 0, true)
	if err != nil {
		return fmt.Errorf("name log --prune %s: %w", a.Name, err)
	}
	if p.Warning != "" {
		fmt.Fprintf(e.stderr, "ddc: name %s: %s\n", p.Name, p.Warning)
	}
	if e.json {
		return writeJSON(e.stdout, p)
	}
	_, err = fmt.Fprintf(e.stdout, "pruned %s at version %d (%s); %d CIDs of earlier versions let go here\n", p.Name, p.Seq, p.CID, p.Unrooted)
	return err
}

// publishPath publishes the bucket's name of a file put with --path p:
// the path without its leading /. With no node running it says so: the
// file is then found by its file-path tag (get --path falls back to it).
func (e *env) publishPath(ctx context.Context, p string, root fmt.Stringer) error {
	cl, err := e.daemon(ctx)
	if err != nil || cl == nil {
		if err == nil {
			fmt.Fprintf(e.stderr, "ddc: no node running: name %s not published (get --path finds the file by its tag)\n", p)
		}
		return err
	}
	pub, err := cl.PublishName(ctx, api.NameArgs{Name: p}, root.String(), 0, false)
	if err != nil {
		return fmt.Errorf("name %s not published: %w", p, err)
	}
	if pub.Warning != "" {
		fmt.Fprintf(e.stderr, "ddc: name %s: %s\n", pub.Name, pub.Warning)
	}
	return nil
}

// atPath is the CID of the bucket's file at path p: its name's newest
// version when a node runs and the name has a record, else the newest
// file whose file-path tag is p (files put with --path before names, or
// with --no-name, or offline).
func (e *env) atPath(ctx context.Context, p string) (string, error) {
	if e.bucket == "" {
		return "", usageErr(errors.New("--path needs -b: paths are looked up in a bucket"))
	}
	cl, err := e.daemon(ctx)
	if err != nil {
		return "", err
	}
	if cl != nil {
		i, err := cl.ResolveName(ctx, api.NameArgs{Name: p}, false)
		if err == nil {
			return i.CID, nil
		}
		if !errors.Is(err, pieces.ErrNotFound) {
			return "", fmt.Errorf("name %s: %w", p, err)
		}
	}
	return e.newestAt(ctx, p)
}
