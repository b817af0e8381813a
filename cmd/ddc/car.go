package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/node/api"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/car"
)

func newExportCmd(e *env) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "export CID [-o FILE.car]",
		Short: "Write a CAR (v1) of a file's DAG, for IPFS tools or 'ddc import'",
		Long: `Write a CAR (v1) of the DAG under CID: the file's descriptors and data
pieces in depth-first order, or, for a DAG that is not ddc's (UnixFS
imported from a CAR), every block its codecs link to, each once. Through
a running node, pieces the repo lacks come from the cluster (-b and
--token read in a bucket); offline, from the repo alone. With -o the CAR
appears whole at FILE or not at all.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := pieces.ParseCID(args[0])
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				return e.export(cmd.Context(), c, e.stdout)
			}
			tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name()) // after the rename, nothing is there
			if err := e.export(cmd.Context(), c, tmp); err != nil {
				tmp.Close()
				return err
			}
			if err := tmp.Sync(); err != nil {
				tmp.Close()
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			return os.Rename(tmp.Name(), out)
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "write the CAR to this file (default: standard output)")
	e.bucketFlags(c)
	return c
}

// export writes the CAR through the running node, or offline from the repo.
func (e *env) export(ctx context.Context, c cid.Cid, w io.Writer) error {
	cl, err := e.daemon(ctx)
	if err != nil {
		return err
	}
	if cl != nil {
		return cl.Export(ctx, c, w)
	}
	return e.withRepo(ctx, func(ctx context.Context, r *repo.Repo) error {
		return car.Export(ctx, w, r.Store, c)
	})
}

func newImportCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "import FILE.car",
		Short: "Store every block of a CAR (v1 or v2), pin its roots and print them",
		Long: `Store every block of a CAR after checking it against its CID, pin the
CAR's roots and print them, one per line. Blocks of codecs ddc does not
read are kept as they are and served by the gateway's /ipfs/<cid>?format=raw.
A CAR with a block whose bytes do not match its CID is refused, naming the
CID, and nothing of it is kept. '-' reads standard input.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := e.stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return usageErr(err)
				}
				defer f.Close()
				in = f
			}
			res, err := e.importCAR(cmd.Context(), in)
			if err != nil {
				return fmt.Errorf("import %s: %w", args[0], err)
			}
			if e.json {
				return writeJSON(e.stdout, res)
			}
			for _, r := range res.Roots {
				fmt.Fprintln(e.stdout, r)
			}
			return nil
		},
	}
	e.jsonFlag(c)
	return c
}

// importCAR stores through the running node, which announces the blocks,
// or offline in the repo.
func (e *env) importCAR(ctx context.Context, in io.Reader) (api.Imported, error) {
	cl, err := e.daemon(ctx)
	if err != nil {
		return api.Imported{}, err
	}
	if cl != nil {
		return cl.Import(ctx, in)
	}
	r, err := e.openRepo()
	if err != nil {
		return api.Imported{}, err
	}
	defer r.Close()
	res, err := node.ImportCAR(r.Store, in)
	return api.ImportedOf(res), err
}
