package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/node/api"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/tartree"
)

// putTree stores the folder dir as a directory, through the running node
// or offline, and prints its root.
func (e *env) putTree(ctx context.Context, dir string, opt pieces.BuildOptions) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	if !fi.IsDir() {
		return usageErr(fmt.Errorf("put -r %s: not a folder; put it without -r", dir))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	walked := make(chan error, 1)
	go func() {
		err := tartree.WriteDir(ctx, pw, dir)
		pw.CloseWithError(err)
		walked <- err
	}()
	start := time.Now()
	var res api.TreeResult
	cl, err := e.daemon(ctx)
	switch {
	case err != nil:
	case cl != nil:
		res, err = cl.PutTree(ctx, pr, opt)
	default:
		err = e.putTreeOffline(ctx, pr, opt, &res)
	}
	pr.CloseWithError(errors.New("put ended"))
	if werr := <-walked; werr != nil && !errors.Is(werr, io.ErrClosedPipe) && !strings.Contains(werr.Error(), "put ended") {
		err = werr // the folder's own error says more than the cut stream
	}
	if err != nil {
		return fmt.Errorf("put -r %s: %w", dir, err)
	}
	took := time.Since(start)
	fmt.Fprintf(e.stderr, "put %d files in %d folders, %s, in %.2fs (%.0f files/s)\n", res.Files, res.Dirs, humanSize(res.Size), took.Seconds(), float64(res.Files)/max(took.Seconds(), 1e-9))
	if e.json {
		return writeJSON(e.stdout, res)
	}
	fmt.Fprintln(e.stdout, res.CID)
	return nil
}

func (e *env) putTreeOffline(ctx context.Context, rd io.Reader, opt pieces.BuildOptions, res *api.TreeResult) error {
	b, err := e.in()
	if err != nil {
		return err
	}
	if b != nil {
		return usageErr(errors.New("put -r into a bucket needs the running node (ddc node run)"))
	}
	r, err := e.openRepo()
	if err != nil {
		return err
	}
	defer r.Close()
	tr, err := r.PutTree(ctx, rd, opt, nil, nil)
	*res = api.TreeResult{CID: tr.Root.String(), Size: tr.Size, Files: tr.Files, Dirs: tr.Dirs, Pieces: tr.Pieces}
	return err
}

// getTree writes the directory c into the folder out (default ./CID),
// creating it; nothing is written outside it, and no file overwritten.
func (e *env) getTree(ctx context.Context, c cid.Cid, out string, pin bool) error {
	if out == "" {
		out = c.String()
	}
	if out == "-" {
		return usageErr(fmt.Errorf("get %s: a directory cannot go to stdout; give -o DIR", c))
	}
	start := time.Now()
	var st tartree.Stats
	extract := func(r io.Reader) error {
		var err error
		st, err = tartree.Extract(ctx, r, out)
		return err
	}
	cl, err := e.daemon(ctx)
	switch {
	case err != nil:
	case cl != nil:
		err = cl.Tree(ctx, c, pin, extract)
	default:
		err = e.withRepo(ctx, func(ctx context.Context, r *repo.Repo) error {
			pr, pw := io.Pipe()
			written := make(chan struct{})
			go func() {
				defer close(written)
				_, err := tartree.WriteTree(ctx, r.Store, c, pw)
				pw.CloseWithError(err)
			}()
			err := extract(pr)
			pr.CloseWithError(errors.New("get ended"))
			<-written // the writer reads the repo, which closes when this returns
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("get %s -o %s: %w", c, out, err)
	}
	took := time.Since(start)
	fmt.Fprintf(e.stderr, "got %d files in %d folders, %s, in %.2fs (%.0f files/s) into %s\n", st.Files, st.Dirs, humanSize(st.Bytes), took.Seconds(), float64(st.Files)/max(took.Seconds(), 1e-9), out)
	return nil
}

// lsDir lists the directory at arg, a CID with an optional /path.
func (e *env) lsDir(ctx context.Context, arg string) error {
	id, path, _ := strings.Cut(arg, "/")
	c, err := pieces.ParseCID(id)
	if err != nil {
		return err
	}
	var l api.Listing
	cl, err := e.daemon(ctx)
	switch {
	case err != nil:
		return err
	case cl != nil:
		if l, err = cl.Dir(ctx, c, path); err != nil {
			return err
		}
	default:
		err = e.withRepo(ctx, func(ctx context.Context, r *repo.Repo) error {
			at, read, err := pieces.ResolvePath(ctx, r.Store, c, path)
			if err != nil {
				return err
			}
			l = api.Listing{CID: at.CID.String(), Size: at.Size, Pieces: read}
			err = pieces.Entries(ctx, r.Store, at.CID, func(e pieces.Link) error {
				l.Entries = append(l.Entries, api.EntryOf(e))
				return nil
			})
			if errors.Is(err, pieces.ErrNotDir) {
				return nil
			}
			l.Dir = err == nil
			return err
		})
		if err != nil {
			return err
		}
	}
	if e.json {
		if l.Entries == nil && l.Dir {
			l.Entries = []api.Entry{}
		}
		return writeJSON(e.stdout, l)
	}
	if !l.Dir {
		fmt.Fprintf(e.stdout, "%s\t%s\n", l.CID, humanSize(l.Size))
		return nil
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for _, en := range l.Entries {
		name := en.Name
		if en.Dir {
			name += "/"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", en.CID, humanSize(en.Size), name)
	}
	return w.Flush()
}
