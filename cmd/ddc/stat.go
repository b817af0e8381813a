package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
)

// jsonTag is a tag in --json output: value as text when it is UTF-8, as
// hex in value_hex otherwise.
type jsonTag struct {
	Key        string `json:"key"`
	Value      string `json:"value,omitempty"`
	ValueHex   string `json:"value_hex,omitempty"`
	Searchable bool   `json:"searchable"`
}

func jsonTags(tags []pieces.Tag) []jsonTag {
	out := make([]jsonTag, len(tags))
	for i, t := range tags {
		out[i] = jsonTag{Key: t.Key, Searchable: t.Searchable}
		if utf8.Valid(t.Value) {
			out[i].Value = string(t.Value)
		} else {
			out[i].ValueHex = hex.EncodeToString(t.Value)
		}
	}
	return out
}

func tagList(tags []pieces.Tag) string {
	s := make([]string, len(tags))
	for i, t := range tags {
		s[i] = printableKey(t.Key) + "=" + printableValue(t.Value)
	}
	return strings.Join(s, " ")
}

func newStatCmd(e *env) *cobra.Command {
	var holders bool
	c := &cobra.Command{
		Use:   "stat CID",
		Short: "Describe a file: size, pieces, tree depth, tags, inline bytes",
		Long: `Describe a file: size, pieces, tree depth, tags, inline bytes.

With --holders (the node must run), also who holds it: each piece's
providers as the DHT names them, and, for a file of a bucket (-b), the
nodes closest to its root that say they keep it, against the bucket's
replication factor.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := pieces.ParseCID(args[0])
			if err != nil {
				return err
			}
			if holders {
				return e.statHolders(cmd.Context(), c)
			}
			st, err := e.stat(cmd.Context(), c)
			if err != nil {
				return err
			}
			return e.printStat(st)
		},
	}
	c.Flags().BoolVar(&holders, "holders", false, "list the holders of each piece, and of the file in its bucket")
	e.bucketFlags(c)
	e.jsonFlag(c)
	return c
}

// stat describes c through the running node (which fetches descriptors it
// lacks) or, offline, from the repo.
func (e *env) stat(ctx context.Context, c cid.Cid) (st pieces.Stat, err error) {
	cl, err := e.daemon(ctx)
	if err != nil {
		return st, err
	}
	if cl == nil {
		err = e.withRepo(ctx, func(ctx context.Context, r *repo.Repo) error {
			st, err = r.Stat(ctx, c)
			return err
		})
		return st, err
	}
	as, err := cl.Stat(ctx, c)
	if err != nil {
		return st, err
	}
	return pieces.Stat{CID: c, Size: as.Size, Pieces: as.Pieces, Descriptors: as.Descriptors, Depth: as.Depth, Inline: as.Inline, Tags: as.Tags}, nil
}

func (e *env) printStat(st pieces.Stat) error {
	if e.json {
		return writeJSON(e.stdout, map[string]any{
			"cid": st.CID.String(), "size": st.Size, "pieces": st.Pieces, "descriptors": st.Descriptors,
			"depth": st.Depth, "inline": st.Inline, "tags": jsonTags(st.Tags),
		})
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "cid\t%s\n", st.CID)
	fmt.Fprintf(w, "size\t%s (%d bytes)\n", humanSize(st.Size), st.Size)
	fmt.Fprintf(w, "pieces\t%d (%d descriptors)\n", st.Pieces, st.Descriptors)
	fmt.Fprintf(w, "depth\t%d\n", st.Depth)
	fmt.Fprintf(w, "inline\t%d bytes\n", st.Inline)
	for _, t := range st.Tags {
		fmt.Fprintf(w, "tag\t%s=%s\n", printableKey(t.Key), printableValue(t.Value))
	}
	return w.Flush()
}

func newLsCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "ls [CID[/PATH]]",
		Short: "List the files in the repo with their size and tags, or a directory's entries",
		Long: `Without an argument, list the files the repo keeps (pinned, or in the
bucket -b names) with their size and tags. With a directory's CID, and a
path inside it, list that directory: each entry's CID, size and name, a
folder's name ending in /.`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				return e.lsDir(cmd.Context(), args[0])
			}
			var rows []map[string]any
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			err := e.files(cmd.Context(), func(fi repo.FileInfo) error {
				if fi.Err != nil {
					fmt.Fprintf(e.stderr, "ddc: %s: %v\n", fi.CID, fi.Err)
				}
				if e.json {
					row := map[string]any{"cid": fi.CID.String(), "size": fi.Size, "tags": jsonTags(fi.Tags), "pinned": fi.Pinned}
					if fi.Err != nil {
						row["error"] = fi.Err.Error()
					}
					rows = append(rows, row)
					return nil
				}
				_, err := fmt.Fprintf(w, "%s\t%s\t%s\n", fi.CID, humanSize(fi.Size), tagList(fi.Tags))
				return err
			})
			if err != nil {
				return err
			}
			if e.json {
				if rows == nil {
					rows = []map[string]any{}
				}
				return writeJSON(e.stdout, rows)
			}
			return w.Flush()
		},
	}
	e.bucketFlags(c)
	e.jsonFlag(c)
	return c
}

// files lists the pinned files through the running node or offline.
func (e *env) files(ctx context.Context, fn func(repo.FileInfo) error) error {
	cl, err := e.daemon(ctx)
	if err != nil {
		return err
	}
	if cl == nil {
		return e.withRepo(ctx, func(ctx context.Context, r *repo.Repo) error {
			if in, _ := e.in(); in != nil { // checked by daemon
				return r.BucketFiles(ctx, in.Bucket, fn)
			}
			return r.Files(ctx, fn)
		})
	}
	fs, err := cl.Ls(ctx)
	if err != nil {
		return err
	}
	for _, f := range fs {
		fi := repo.FileInfo{Size: f.Size, Tags: f.Tags, Pinned: f.Pinned}
		if fi.CID, err = cid.Parse(f.CID); err != nil {
			return fmt.Errorf("node listed a bad CID %q: %w", f.CID, err)
		}
		if f.Error != "" {
			fi.Err = errors.New(f.Error)
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// withRepo opens the repo read-only, runs fn and closes it: any number of
// readers may do so at once, and a read-only directory is fine.
func (e *env) withRepo(ctx context.Context, fn func(context.Context, *repo.Repo) error) error {
	r, err := repo.OpenReadOnly(e.repoPath, nil)
	if err != nil {
		return err
	}
	defer r.Close()
	return fn(ctx, r)
}
