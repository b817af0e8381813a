package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/node/api"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
)

func newRepoCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "repo", Short: "Inspect the repo"}
	stat := &cobra.Command{
		Use:   "stat",
		Short: "Show how much the repo's store holds",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := e.repoStat(cmd.Context())
			if err != nil {
				return err
			}
			if e.json {
				return writeJSON(e.stdout, st)
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			io := "buffered"
			if st.DirectIO {
				io = "direct (O_DIRECT)"
			}
			fmt.Fprintf(w, "repo\t%s\npeer ID\t%s\npieces\t%d\nlive bytes\t%s\nin place\t%s (%d pieces in %d files of yours)\ndead bytes\t%s\non disk\t%s (block files of %s)\nblock files\t%d\nblock writes\t%s\n",
				st.Repo, st.PeerID, st.Pieces, humanSize(st.PieceBytes), humanSize(st.InPlaceBytes), st.InPlacePieces, len(st.InPlace), humanSize(st.DeadBytes), humanSize(st.Allocated), humanSize(st.DiskBytes), st.Blocks, io)
			return w.Flush()
		},
	}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Re-hash every piece against its CID",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			bad := 0
			l, err := e.repoVerify(cmd.Context(), func(msg string) {
				bad++
				fmt.Fprintf(e.stderr, "ddc: %s\n", msg)
			})
			if err != nil {
				return err
			}
			n := l.Checked
			fmt.Fprintf(e.stdout, "%d pieces checked, %d bad\n", n, bad)
			for _, f := range l.InPlace {
				fmt.Fprintf(e.stdout, "in place: %d pieces (%s) in %s\n", f.Pieces, humanSize(f.Bytes), f.Path)
			}
			if bad > 0 {
				return fmt.Errorf("%w: %d of %d pieces failed verification", pieces.ErrCorrupt, bad, n)
			}
			return nil
		},
	}
	reindex := &cobra.Command{
		Use:   "reindex",
		Short: "Rebuild the tag index from the stored descriptors",
		Long: `Rebuild the tag index that search reads from the descriptors in the
store. A node does this by itself when it opens a repo whose index is
missing or of another layout; run it after repairing a store by hand.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := e.repoReindex(cmd.Context())
			if err != nil {
				return err
			}
			if e.json {
				return writeJSON(e.stdout, out)
			}
			rate := 0.0
			if out.Seconds > 0 {
				rate = float64(out.Descriptors) / out.Seconds
			}
			_, err = fmt.Fprintf(e.stdout, "%d descriptors indexed in %.2fs (%.0f/s)\n", out.Descriptors, out.Seconds, rate)
			return err
		},
	}
	e.jsonFlag(stat)
	e.jsonFlag(reindex)
	gc := &cobra.Command{
		Use:   "gc",
		Short: "Remove every piece no pin or bucket keeps, and give its space back",
		Long: `Remove every piece that no root reaches: pinned files, files kept for a
bucket, and reads and puts in progress keep theirs. Through a running node
it runs beside everything the node does, which goes on; the space of what
it removes goes back to the filesystem once the reads that found it end.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := e.repoGC(cmd.Context())
			if err != nil {
				return err
			}
			if e.json {
				return writeJSON(e.stdout, res)
			}
			fmt.Fprintf(e.stdout, "removed %d pieces (%s) in %.2fs; %d live\n", res.Removed, humanSize(res.FreedBytes), res.Seconds, res.Live)
			return nil
		},
	}
	e.jsonFlag(gc)
	c.Short = "Inspect and collect the repo"
	c.AddCommand(stat, verify, reindex, gc)
	return c
}

// repoStat asks the running node, or reads the repo offline.
func (e *env) repoStat(ctx context.Context) (st api.RepoStat, err error) {
	cl, err := e.daemon(ctx)
	if err != nil || cl != nil {
		if err == nil {
			st, err = cl.RepoStat(ctx)
		}
		return st, err
	}
	err = e.withRepo(ctx, func(_ context.Context, r *repo.Repo) error {
		st, err = api.StatRepo(ctx, r)
		return err
	})
	return st, err
}

// repoVerify re-hashes every piece through the running node, or offline,
// calling bad with a line for each that fails.
func (e *env) repoVerify(ctx context.Context, bad func(msg string)) (api.VerifyLine, error) {
	cl, err := e.daemon(ctx)
	if err != nil {
		return api.VerifyLine{}, err
	}
	if cl != nil {
		return cl.RepoVerify(ctx, func(c, msg string) { bad(msg) })
	}
	var l api.VerifyLine
	err = e.withRepo(ctx, func(ctx context.Context, r *repo.Repo) error {
		if l.Checked, err = r.Store.VerifyAll(ctx, func(c cid.Cid, err error) { bad(err.Error()) }); err != nil {
			return err
		}
		st, err := api.StatRepo(ctx, r)
		l.InPlace = st.InPlace
		return err
	})
	return l, err
}

// repoReindex rebuilds the tag index through the running node, or offline
// with the repo open for writing.
func (e *env) repoReindex(ctx context.Context) (api.Reindexed, error) {
	return nodeOrWritable(ctx, e, (*api.Client).RepoReindex, func(r *repo.Repo) (api.Reindexed, error) {
		start := time.Now()
		n, err := r.Store.Reindex(ctx)
		return api.Reindexed{Descriptors: n, Seconds: time.Since(start).Seconds()}, err
	})
}

// repoGC collects garbage through the running node, or offline with the
// repo open for writing.
func (e *env) repoGC(ctx context.Context) (api.GCResult, error) {
	return nodeOrWritable(ctx, e, (*api.Client).RepoGC, func(r *repo.Repo) (api.GCResult, error) {
		return api.CollectGarbage(ctx, r)
	})
}

// nodeOrWritable asks the running node with online, or, with none, runs
// offline on the repo opened for writing.
func nodeOrWritable[T any](ctx context.Context, e *env, online func(*api.Client, context.Context) (T, error), offline func(*repo.Repo) (T, error)) (T, error) {
	var out T
	cl, err := e.daemon(ctx)
	if err != nil {
		return out, err
	}
	if cl != nil {
		return online(cl, ctx)
	}
	err = e.withWritableRepo(func(r *repo.Repo) error {
		out, err = offline(r)
		return err
	})
	return out, err
}
