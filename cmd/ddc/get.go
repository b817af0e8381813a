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
so a failed get leaves nothing at the path.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withFile(cmd.Context(), args[0], func(c cid.Cid, f *pieces.File) error {
				return getFile(e, c, f, out)
			})
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "output path, - for stdout (default ./CID)")
	return c
}

func getFile(e *env, c cid.Cid, f *pieces.File, out string) error {
	if out == "" {
		out = c.String()
	}
	bar := e.newProgress(f.Size(), "get")
	defer bar.done()
	if out == "-" {
		growPipe(e.stdout)
		_, err := f.WriteTo(&countingWriter{w: e.stdout, p: bar})
		return err
	}
	return writeAtomically(out, func(w io.Writer) error {
		_, err := f.WriteTo(&countingWriter{w: w, p: bar})
		return err
	})
}

// withFile parses arg as a CID, opens the repo and the file, and runs fn.
func (e *env) withFile(ctx context.Context, arg string, fn func(cid.Cid, *pieces.File) error) error {
	c, err := pieces.ParseCID(arg)
	if err != nil {
		return err
	}
	return e.withRepo(ctx, func(ctx context.Context, r *repo.Repo) error {
		f, err := r.OpenFile(ctx, c)
		if err != nil {
			return err
		}
		return fn(c, f)
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
			return e.withFile(cmd.Context(), args[0], func(c cid.Cid, f *pieces.File) error {
				if offset > f.Size() {
					return usageErr(fmt.Errorf("--offset %d is past the end of %s (%d bytes)", offset, c, f.Size()))
				}
				if length == -1 {
					length = f.Size() - offset
				}
				f.Seek(offset, io.SeekStart)
				growPipe(e.stdout)
				_, err := f.CopyRange(e.stdout, length)
				return err
			})
		},
	}
	c.Flags().Int64Var(&offset, "offset", 0, "first byte to write")
	c.Flags().Int64Var(&length, "length", -1, "bytes to write (default: to the end)")
	return c
}
