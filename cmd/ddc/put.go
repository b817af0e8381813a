package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/node/api"
	"github.com/ddc-project/ddc/pieces"
)

func newPutCmd(e *env) *cobra.Command {
	var (
		tags, noIndex []string
		chunk, inline string
		chunker       string
		hash          string
		filePath      string
		inPlace       bool
		replicasWait  bool
		recursive     bool
		noName        bool
	)
	c := &cobra.Command{
		Use:   "put PATH|-  |  put -r FOLDER",
		Short: "Store a file (or stdin) and print its CID",
		Long: `Store a file, or standard input when PATH is -, and print the CID of its
descriptor alone on stdout. The same bytes with the same tags and options
always give the same CID, and are stored once.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opt, err := buildOptions(tags, chunk, inline, hash)
			if err == nil {
				err = chunkerOption(&opt, chunker, cmd.Flags().Changed("chunk-size"))
			}
			if err == nil {
				err = unindexed(&opt, noIndex)
			}
			if err != nil {
				return usageErr(err)
			}
			if recursive {
				if filePath != "" || inPlace || replicasWait {
					return usageErr(errors.New("put -r takes none of --path, --in-place, --replicas-wait"))
				}
				return e.putTree(cmd.Context(), args[0], opt)
			}
			in, size, err := openInput(e, args[0])
			if err != nil {
				return err
			}
			defer in.Close()
			var rd io.Reader = in
			if filePath != "" {
				if rd, err = pathTags(&opt, filePath, in, time.Now()); err != nil {
					return err
				}
			}
			var at *os.File
			if inPlace {
				f, ok := in.(*os.File) // stdin comes wrapped: not a file put in place
				if fi, err := f.Stat(); !ok || err != nil || !fi.Mode().IsRegular() {
					return usageErr(fmt.Errorf("put --in-place %s: want a regular file, which stays where it is", args[0]))
				}
				at = f
			}
			bar := e.newProgress(size, "put")
			res, err := e.put(cmd.Context(), rd, size, opt, bar, at)
			bar.done()
			if err != nil {
				return fmt.Errorf("put %s: %w", args[0], err)
			}
			var holders []string
			if replicasWait {
				if holders, err = e.waitReplicas(cmd.Context(), res.Root); err != nil {
					return fmt.Errorf("put %s: stored as %s, but %w", args[0], res.Root, err)
				}
			}
			if filePath != "" && e.bucket != "" && !noName { // after the replicas: they then keep the name too
				if err := e.publishPath(cmd.Context(), filePath, res.Root); err != nil {
					return fmt.Errorf("put %s: stored as %s, but %w", args[0], res.Root, err)
				}
			}
			if e.json {
				out := map[string]any{"cid": res.Root.String(), "size": res.Size, "pieces": res.Pieces}
				if replicasWait {
					out["holders"] = holders
				}
				return writeJSON(e.stdout, out)
			}
			fmt.Fprintln(e.stdout, res.Root)
			return nil
		},
	}
	f := c.Flags()
	f.StringArrayVarP(&tags, "tag", "t", nil, "tag KEY=VALUE (repeatable)")
	f.StringArrayVar(&noIndex, "no-index", nil, "keep the tags named KEY out of search indexes (repeatable)")
	f.StringVar(&filePath, "path", "", "the file's path, as /dir/name: sets the file-path tag, content-type (from the extension or the first bytes) and timestamp unless given")
	f.StringVar(&chunk, "chunk-size", "1MiB", fmt.Sprintf("bytes per data piece (%d B to 4 MiB)", pieces.MinChunkSize))
	f.StringVar(&chunker, "chunker", pieces.ChunkerFixed.String(), "where data pieces are cut: fixed (every --chunk-size bytes) or cdc (where the content says, 256 KiB to 4 MiB: an edit changes only the pieces around it)")
	f.StringVar(&inline, "inline", "4KiB", "bytes stored inline in the descriptor (whole file when it fits)")
	f.StringVar(&hash, "hash", pieces.DefaultHash.Name, "hash function: sha2-256, blake3 or blake2b-256")
	f.BoolVar(&replicasWait, "replicas-wait", false, "wait until the bucket's replication factor of nodes keep the file, showing each on stderr")
	f.BoolVarP(&recursive, "recursive", "r", false, "put a folder: every folder (empty ones too) and regular file below it, as a directory; prints the root's CID")
	f.BoolVar(&noName, "no-name", false, "with --path and -b: do not publish the path as the bucket's name for the file")
	f.BoolVar(&inPlace, "in-place", false, "leave the file's data where it lies, indexed, not copied: changing or deleting the file later drops them")
	e.bucketFlags(c)
	e.jsonFlag(c)
	return c
}

// waitReplicas has the running node push root until the bucket's factor
// of nodes keep it, telling each step on stderr, and returns the holders.
func (e *env) waitReplicas(ctx context.Context, root cid.Cid) ([]string, error) {
	cl, err := e.daemon(ctx)
	if err != nil {
		return nil, err
	}
	if cl == nil {
		return nil, errors.New("--replicas-wait needs a running node to push the file to others (ddc node run)")
	}
	out, err := cl.Replicate(ctx, root, func(l api.ReplicaLine) {
		if l.Error != "" {
			fmt.Fprintf(e.stderr, "ddc: %s %s: %s\n", l.Peer, l.Status, l.Error)
		} else {
			fmt.Fprintf(e.stderr, "ddc: %s %s\n", l.Peer, l.Status)
		}
	})
	if err != nil {
		return nil, err
	}
	if out.Error != "" {
		return out.Holders, fmt.Errorf("%d of %d replicas: %s", len(out.Holders), out.Replicas, out.Error)
	}
	fmt.Fprintf(e.stderr, "ddc: %d of %d replicas held\n", len(out.Holders), out.Replicas)
	return out.Holders, nil
}

// put stores in through the running node, which announces it, or offline
// in the repo.
//
// With at, the file in is, the put leaves its data pieces in place.
func (e *env) put(ctx context.Context, in io.Reader, size int64, opt pieces.BuildOptions, bar *progress, at *os.File) (pieces.BuildResult, error) {
	cl, err := e.daemon(ctx)
	if err != nil {
		return pieces.BuildResult{}, err
	}
	if cl == nil {
		r, err := e.openRepo()
		if err != nil {
			return pieces.BuildResult{}, err
		}
		defer r.Close()
		if size > 0 {
			if err := r.Store.Fits(ctx, uint64(size)); err != nil {
				return pieces.BuildResult{}, err
			}
		}
		opt.Progress = bar.set
		return e.putOffline(ctx, r, in, opt, at)
	}
	var pr api.PutResult
	if at != nil {
		pr, err = cl.PutInPlace(ctx, at.Name(), at, opt, func(n int64) { bar.set(uint64(n)) })
	} else {
		pr, err = cl.Put(ctx, &countingReader{r: in, p: bar}, size, opt)
	}
	if err != nil {
		return pieces.BuildResult{}, err
	}
	root, err := cid.Parse(pr.CID)
	if err != nil {
		return pieces.BuildResult{}, fmt.Errorf("node returned a bad CID %q: %w", pr.CID, err)
	}
	return pieces.BuildResult{Root: root, Size: pr.Size, Pieces: pr.Pieces}, nil
}

func buildOptions(tags []string, chunk, inline, hash string) (pieces.BuildOptions, error) {
	opt := pieces.DefaultBuildOptions()
	var err error
	if opt.Hash, err = pieces.ParseHash(hash); err != nil {
		return opt, err
	}
	n, err := parseSize(chunk)
	if err != nil {
		return opt, fmt.Errorf("--chunk-size: %w", err)
	}
	opt.ChunkSize = int(n)
	if n, err = parseSize(inline); err != nil {
		return opt, fmt.Errorf("--inline: %w", err)
	}
	opt.Inline = int(n)
	for _, s := range tags {
		t, err := pieces.ParseTag(s)
		if err != nil {
			return opt, fmt.Errorf("--tag %w", err)
		}
		opt.Tags = append(opt.Tags, t)
	}
	return opt, opt.Validate()
}

// chunkerOption sets the chunker named; cdc cuts its own sizes, so an
// explicit --chunk-size beside it is refused rather than ignored.
func chunkerOption(opt *pieces.BuildOptions, name string, sized bool) error {
	c, err := pieces.ParseChunker(name)
	if err != nil {
		return fmt.Errorf("--chunker: %w", err)
	}
	if c == pieces.ChunkerCDC && sized {
		return fmt.Errorf("--chunk-size is for --chunker fixed; cdc cuts pieces of %d KiB to %d MiB where the content says", pieces.CDCMinSize>>10, pieces.CDCMaxSize>>20)
	}
	opt.Chunker = c
	return nil
}

// checkStdin refuses a standard input that is closed. Go gives a process
// started with fd 0 closed /dev/null in its place, so stdin on /dev/null is
// refused too: 'put -' would store an empty file the user never meant.
// 'ddc put /dev/null' stores an empty file on purpose.
func checkStdin(in io.Reader) error {
	f, ok := in.(*os.File)
	if !ok {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return usageErr(fmt.Errorf("put -: standard input is closed (%w)", err))
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
		return usageErr(errors.New("put -: standard input is closed or /dev/null; to store an empty file, run 'ddc put /dev/null'"))
	}
	return nil
}

// openInput opens PATH, or stdin for "-", and returns its size (-1 when
// unknown).
func openInput(e *env, path string) (io.ReadCloser, int64, error) {
	if path == "-" {
		if err := checkStdin(e.stdin); err != nil {
			return nil, 0, err
		}
		return io.NopCloser(e.stdin), -1, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("input: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("input: %w", err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, 0, usageErr(fmt.Errorf("input %s is a directory; put -r stores a folder", path))
	}
	return f, fi.Size(), nil
}

// unindexed marks the tags named in keys as not searchable.
func unindexed(opt *pieces.BuildOptions, keys []string) error {
	for _, k := range keys {
		found := false
		for i := range opt.Tags {
			if opt.Tags[i].Key == k {
				opt.Tags[i].Searchable, found = false, true
			}
		}
		if !found {
			return fmt.Errorf("--no-index %q: no tag of that key is given", k)
		}
	}
	return nil
}

// pathTags adds the tags of a file put at path p, keeping those given:
// file-path, content-type from p's extension or else the first bytes of
// in, and the time of the put. It returns the reader to put from.
func pathTags(opt *pieces.BuildOptions, p string, in io.Reader, now time.Time) (io.Reader, error) {
	if !strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return nil, usageErr(fmt.Errorf("--path %.64q: want an absolute path such as /talks/keynote.mp4", p))
	}
	has := func(k string) bool {
		return slices.ContainsFunc(opt.Tags, func(t pieces.Tag) bool { return t.Key == k })
	}
	add := func(k, v string) {
		if !has(k) {
			opt.Tags = append(opt.Tags, pieces.Tag{Key: k, Value: []byte(v), Searchable: true})
		}
	}
	add(pieces.TagFilePath, p)
	if !has(pieces.TagContentType) {
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			br := bufio.NewReaderSize(in, 512)
			head, _ := br.Peek(512) // a shorter file sniffs on what it has
			ct, in = http.DetectContentType(head), br
		}
		add(pieces.TagContentType, ct)
	}
	add(pieces.TagTimestamp, now.UTC().Format(pieces.TimestampLayout))
	if err := opt.Validate(); err != nil {
		return nil, usageErr(fmt.Errorf("--path: %w", err))
	}
	return in, nil
}
