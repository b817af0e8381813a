package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
)

func newGetCmd(e *env) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "get CID",
		Short: "Write a file to disk (default ./CID; -o - for stdout)",
		Long: `Write the file CID to the path -o names (default: ./CID). The file is
written to a temporary name beside it and renamed when complete and verified,
so a failed get leaves nothing at the path. With a node running on the repo,
pieces the repo lacks are fetched from every holder in the cluster, kept,
and announced, and the file is pinned.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withContent(cmd.Context(), args[0], 0, -1, true, func(ct content) error {
				return getFile(cmd.Context(), e, ct, out)
			})
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "output path, - for stdout (default ./CID)")
	return c
}

func getFile(ctx context.Context, e *env, ct content, out string) error {
	if out == "" {
		out = ct.cid.String()
	}
	bar := e.newProgress(ct.length, "get")
	defer bar.done()
	if ct.holders != nil && bar.bar != nil {
		stop := bar.follow(ctx, ct.holders)
		defer stop()
	}
	if out == "-" {
		growPipe(e.stdout)
		_, err := ct.copy(&countingWriter{w: e.stdout, p: bar})
		return err
	}
	return writeAtomically(out, func(w io.Writer) error {
		_, err := ct.copy(&countingWriter{w: w, p: bar})
		return err
	})
}

// content is a file's bytes, or a range of them, on their way from the
// repo or through the running node.
type content struct {
	cid     cid.Cid
	size    int64                                // the whole file
	length  int64                                // bytes copy writes
	copy    func(w io.Writer) (int64, error)     // writes the bytes to w
	holders func(context.Context) (string, bool) // progress note; nil offline
}

// withContent parses arg as a CID and runs fn with length bytes of it
// (-1: to the end) from offset: through the node running on the repo when
// there is one (pin asks it to pin the file once read whole), offline
// from the repo otherwise.
func (e *env) withContent(ctx context.Context, arg string, offset, length int64, pin bool, fn func(content) error) error {
	c, err := pieces.ParseCID(arg)
	if err != nil {
		return err
	}
	cl, err := e.daemon(ctx)
	if err != nil {
		return err
	}
	if cl != nil {
		cat, err := cl.Cat(ctx, c, offset, length, pin)
		if err != nil {
			return err
		}
		defer cat.Close()
		return fn(content{cid: c, size: cat.Size, length: cat.Length,
			copy: func(w io.Writer) (int64, error) {
				return io.CopyBuffer(w, cat, make([]byte, 1<<20))
			},
			holders: func(ctx context.Context) (string, bool) {
				ds, err := cl.Downloads(ctx)
				if err != nil {
					return "", false
				}
				for _, d := range ds {
					if d.ID == cat.Download {
						return fmt.Sprintf("%d/%d holders", d.Serving, d.Holders), true
					}
				}
				return "", false
			},
		})
	}
	return e.withRepo(ctx, func(ctx context.Context, r *repo.Repo) error {
		f, err := r.OpenFile(ctx, c)
		if err != nil {
			return err
		}
		length, err := f.SeekRange(offset, length)
		if err != nil {
			return err
		}
		return fn(content{cid: c, size: f.Size(), length: length,
			copy: func(w io.Writer) (int64, error) { return f.CopyRange(w, length) }})
	})
}

// writeAtomically calls write with a temporary file beside path and renames
// it to path only when write succeeds.
func writeAtomically(path string, write func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".ddc-*")
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	return nil
}

func newCatCmd(e *env) *cobra.Command {
	var offset, length int64
	c := &cobra.Command{
		Use:   "cat CID",
		Short: "Write a file, or a byte range of it, to stdout",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if offset < 0 || length < -1 {
				return usageErr(fmt.Errorf("--offset and --length must not be negative"))
			}
			return e.withContent(cmd.Context(), args[0], offset, length, false, func(ct content) error {
				growPipe(e.stdout)
				_, err := ct.copy(e.stdout)
				return err
			})
		},
	}
	c.Flags().Int64Var(&offset, "offset", 0, "first byte to write")
	c.Flags().Int64Var(&length, "length", -1, "bytes to write (default: to the end)")
	return c
}
