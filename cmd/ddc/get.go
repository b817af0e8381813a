package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/node/api"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/search"
)

func newGetCmd(e *env) *cobra.Command {
	var out, filePath string
	var pin, copyOut bool
	c := &cobra.Command{
		Use:   "get CID",
		Short: "Write a file or a directory's tree to disk (default ./CID; -o - for stdout)",
		Long: `Write the file CID to the path -o names (default: ./CID; into a
directory: DIR/CID). A regular file is written to a temporary name beside
it, synced, and renamed when complete and verified, so a failed get leaves
nothing new at the path; a symlink is written through and kept; a device or
FIFO (/dev/null, a named pipe) is written into. New files get 0666 less the
umask; a file replaced keeps its mode. With a node running on the repo,
pieces the repo lacks are fetched from every holder in the cluster, kept,
and announced, as cache: 'ddc repo gc' may remove them unless --pin pins
the file. A whole file written to a regular file keeps its data pieces in
place: the node writes each byte once, into the output, indexes the pieces
there and serves them from it, and drops them when the file changes or
goes. --copy, or --pin (a pin must not depend on a file you may delete),
keeps a copy in the node's blocks instead.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if filePath != "" {
				return exactArgs(0)(cmd, args)
			}
			return exactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var id string
			if filePath != "" {
				c, err := e.atPath(cmd.Context(), filePath)
				if err != nil {
					return err
				}
				id = c
			} else {
				id = args[0]
			}
			err := e.withContent(cmd.Context(), id, 0, -1, pin, func(ct content) error {
				return getFile(cmd.Context(), e, ct, out, copyOut || pin)
			})
			if errors.Is(err, pieces.ErrIsDir) {
				c, _ := pieces.ParseCID(id) // withContent parsed it
				return e.getTree(cmd.Context(), c, out, pin)
			}
			return err
		},
	}
	c.Flags().BoolVar(&pin, "pin", false, "pin the file once it is read whole, so that GC keeps it (the node keeps a copy of its own)")
	c.Flags().BoolVar(&copyOut, "copy", false, "keep the node's copy in its blocks, not in place in the output file")
	c.Flags().StringVarP(&out, "output", "o", "", "output path, - for stdout (default ./CID)")
	c.Flags().StringVar(&filePath, "path", "", "get the newest file of the bucket (-b) with this file-path tag, instead of a CID")
	e.bucketFlags(c)
	return c
}

func getFile(ctx context.Context, e *env, ct content, out string, copyOut bool) error {
	if out == "" {
		out = ct.cid.String()
	}
	bar := e.newProgress(ct.length, "get")
	defer bar.done()
	start := time.Now()
	var sum summary
	var err error
	if out == "-" {
		growPipe(e.stdout)
		sum, err = ct.write(e.stdout, bar, nil)
	} else {
		if fi, err := os.Stat(out); err == nil && fi.IsDir() { // as cp does: into it
			out = filepath.Join(out, ct.cid.String())
		}
		err = writeOutput(out, func(f *os.File, final string, finish func() error) (err error) {
			var at *inPlace
			if final != "" && !copyOut {
				at = &inPlace{path: final, finish: finish}
			}
			sum, err = ct.write(f, bar, at)
			return err
		})
	}
	if err == nil {
		bar.done()
		fmt.Fprintf(e.stderr, "%s\n", sum.line(time.Since(start)))
	}
	return err
}

// content is a file's bytes, or a range of them, on their way from the
// repo or through the running node.
type content struct {
	cid    cid.Cid
	length int64 // bytes write writes; -1 until the node says
	// write writes the bytes to w, moving bar; at, when not nil, asks
	// the node to keep the pieces in place in w, the file at.path.
	write func(w io.Writer, bar *progress, at *inPlace) (summary, error)
}

// inPlace is the file a get's output becomes, for the node to keep the
// file's pieces in: its absolute path, and what moves it there.
type inPlace struct {
	path   string
	finish func() error
}

// summary is what a get leaves on stderr when it ends.
type summary struct {
	bytes   int64
	serving int  // remote holders that sent pieces
	online  bool // through a node
}

func (s summary) line(took time.Duration) string {
	rate := float64(s.bytes) / max(took.Seconds(), 1e-9) / 1e6
	from := "from the repo"
	switch {
	case s.online && s.serving == 0:
		from = "from the node's store"
	case s.serving == 1:
		from = "from 1 holder"
	case s.serving > 1:
		from = fmt.Sprintf("from %d holders", s.serving)
	}
	return fmt.Sprintf("got %s in %.2fs (%.0f MB/s) %s", humanSize(uint64(s.bytes)), took.Seconds(), rate, from)
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
		return fn(content{cid: c, length: -1, write: func(w io.Writer, bar *progress, at *inPlace) (summary, error) {
			opt := api.CopyOptions{Offset: offset, Length: length, Pin: pin}
			if at != nil && offset == 0 && length < 0 && !pin {
				opt.InPlace, opt.Written = at.path, at.finish
			}
			sum, err := nodeWrite(ctx, cl, c, opt, w, bar)
			if err != nil && !strings.Contains(err.Error(), c.String()) {
				err = fmt.Errorf("%s: %w", c, err) // a node that stopped answering names no CID
			}
			return sum, err
		}})
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
		return fn(content{cid: c, length: length, write: func(w io.Writer, bar *progress, _ *inPlace) (summary, error) {
			n, err := f.CopyRange(&countingWriter{w: w, p: bar}, length)
			return summary{bytes: n}, err
		}})
	})
}

// nodeWrite has the node write the bytes. When w is a file (a file being
// written, or stdout redirected to a file or a pipe) and the node has a
// copy socket, the node writes into it directly; otherwise the bytes
// stream through the HTTP API and this process writes them.
func nodeWrite(ctx context.Context, cl *api.Client, c cid.Cid, opt api.CopyOptions, w io.Writer, bar *progress) (summary, error) {
	if f, ok := w.(*os.File); ok && cl.CanCopy() {
		st, err := cl.CopyTo(ctx, c, opt, f, func(st api.CopyStatus) {
			bar.resize(st.Length)
			bar.set(uint64(st.Bytes))
			bar.describe(holderNote(st))
		})
		return summary{bytes: st.Bytes, serving: st.Serving, online: true}, err
	}
	cat, err := cl.Cat(ctx, c, opt.Offset, opt.Length, opt.Pin)
	if err != nil {
		return summary{}, err
	}
	defer cat.Close()
	bar.resize(cat.Length)
	if bar.bar != nil {
		stop := bar.follow(ctx, func(ctx context.Context) (string, bool) {
			ds, err := cl.Downloads(ctx)
			if err != nil {
				return "", false
			}
			for _, d := range ds {
				if d.ID == cat.Download {
					return holderNote(d.CopyStatus), true
				}
			}
			return "", false
		})
		defer stop()
	}
	n, err := io.CopyBuffer(&countingWriter{w: w, p: bar}, cat, make([]byte, 1<<20))
	return summary{bytes: n, serving: cat.Serving(), online: true}, err
}

// holderNote is the progress line's note on where the bytes come from.
func holderNote(st api.CopyStatus) string {
	if st.Bytes == 0 && st.Searching {
		return fmt.Sprintf("finding holders… %d peers asked", st.Asked)
	}
	return fmt.Sprintf("%d/%d holders", st.Serving, st.Holders)
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
				_, err := ct.write(e.stdout, &progress{}, nil)
				return err
			})
		},
	}
	c.Flags().Int64Var(&offset, "offset", 0, "first byte to write")
	c.Flags().Int64Var(&length, "length", -1, "bytes to write (default: to the end)")
	e.bucketFlags(c)
	return c
}

// newestAt finds the newest file of the bucket the flags name whose
// file-path tag is p: the one with the greatest timestamp tag (a file
// without one is older than any with one), then the greatest CID.
func (e *env) newestAt(ctx context.Context, p string) (string, error) {
	if e.bucket == "" {
		return "", usageErr(errors.New("--path needs -b: paths are looked up in a bucket"))
	}
	sq := api.SearchQuery{Terms: []string{pieces.TagFilePath + "=" + p}, Limit: search.MaxLimit}
	var newest search.Newest
	for {
		a, err := e.search(ctx, sq)
		if err != nil {
			return "", err
		}
		for _, r := range a.Results {
			c, err := pieces.ParseCID(r.CID)
			if err != nil {
				return "", fmt.Errorf("search result: %w", err)
			}
			newest.Add(c, r.Tags)
		}
		if a.Cursor == "" {
			if !newest.Best().Defined() {
				partial := ""
				if a.Partial {
					partial = " (some holders did not answer)"
				}
				return "", fmt.Errorf("%w: no file with path %q in bucket %s%s", pieces.ErrNotFound, p, e.bucket, partial)
			}
			return newest.Best().String(), nil
		}
		sq.Cursor = a.Cursor
	}
}
