package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

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
			return e.withRepo(cmd.Context(), func(_ context.Context, r *repo.Repo) error {
				u, err := r.Store.Usage()
				if err != nil {
					return err
				}
				if e.json {
					return writeJSON(e.stdout, map[string]any{"repo": r.Path, "peer_id": r.PeerID().String(),
						"pieces": u.Pieces, "piece_bytes": u.PieceBytes, "blocks": u.Blocks, "disk_bytes": u.DiskBytes, "direct_io": u.DirectIO})
				}
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				io := "buffered"
				if u.DirectIO {
					io = "direct (O_DIRECT)"
				}
				fmt.Fprintf(w, "repo\t%s\npeer ID\t%s\npieces\t%d\npiece bytes\t%s\nblock files\t%d\ndisk bytes\t%s\nblock writes\t%s\n",
					r.Path, r.PeerID(), u.Pieces, humanSize(u.PieceBytes), u.Blocks, humanSize(u.DiskBytes), io)
				return w.Flush()
			})
		},
	}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Re-hash every piece against its CID",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.withRepo(cmd.Context(), func(ctx context.Context, r *repo.Repo) error {
				bad := 0
				n, err := r.Store.VerifyAll(ctx, func(c cid.Cid, err error) {
					bad++
					fmt.Fprintf(e.stderr, "ddc: %v\n", err)
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%d pieces checked, %d bad\n", n, bad)
				if bad > 0 {
					return fmt.Errorf("%w: %d of %d pieces failed verification", pieces.ErrCorrupt, bad, n)
				}
				return nil
			})
		},
	}
	e.jsonFlag(stat)
	c.AddCommand(stat, verify)
	return c
}
