package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/node/api"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/search"
)

func newSearchCmd(e *env) *cobra.Command {
	var sq api.SearchQuery
	c := &cobra.Command{
		Use:   "search [-b BUCKET] TERM...",
		Short: "Find files by their tags, in this repo or across a bucket's holders",
		Long: `Find files by their tags. Every term must hold (AND):

  key=value    the tag's value is exactly value
  key^=prefix  the value starts with prefix
  key>=v key>v key<=v key<v
               the value is in range: numerically when v is a number
               (2020, -3, 0.25: no leading zeros, no exponent) and then
               only values that are numbers match; byte order otherwise.
               Range terms on one key make one range one value must be in.
  key          the file has a tag named key

A key ends at the first of = ^ < >; the value is the rest and may contain
them. Results are ordered by the value of the first exact term (else
prefix, range, has-tag term), then by CID, with --limit per page; a last
line on stderr gives the --cursor for the next page.

With -b, the search covers the bucket's files on this node and on every
holder of the bucket the node finds, within --timeout; the answer says how
many holders answered and whether it may be partial. A private bucket
needs a grant, as a get does. Without -b, it covers this repo's files put
in no bucket.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			sq.Terms = args
			a, err := e.search(cmd.Context(), sq)
			if err != nil {
				return err
			}
			if e.json {
				rows := make([]map[string]any, len(a.Results))
				for i, r := range a.Results {
					rows[i] = map[string]any{"cid": r.CID, "size": r.Size, "tags": jsonTags(r.Tags)}
				}
				return writeJSON(e.stdout, map[string]any{"results": rows, "cursor": a.Cursor,
					"holders": a.Holders, "answered": a.Answered, "partial": a.Partial, "failures": a.Failures})
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			for _, r := range a.Results {
				fmt.Fprintf(w, "%s\t%s\t%s\n", r.CID, humanSize(r.Size), tagList(r.Tags))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			e.searchSummary(a)
			return nil
		},
	}
	f := c.Flags()
	f.IntVar(&sq.Limit, "limit", search.DefaultLimit, fmt.Sprintf("results per page (max %d)", search.MaxLimit))
	f.StringVar(&sq.Cursor, "cursor", "", "continue after the page that gave this cursor (same terms and bucket)")
	f.DurationVar(&sq.Timeout, "timeout", node.DefaultSearchTimeout, "how long to wait for the bucket's holders")
	e.bucketFlags(c)
	e.jsonFlag(c)
	return c
}

// searchSummary tells on stderr how complete the page is and how to get
// the next.
func (e *env) searchSummary(a api.SearchAnswer) {
	if e.bucket != "" {
		fmt.Fprintf(e.stderr, "%d results; %d of %d other holders answered", len(a.Results), a.Answered, a.Holders)
		if a.Partial {
			fmt.Fprint(e.stderr, " (partial: some holders may have more)")
		}
		fmt.Fprintln(e.stderr)
		for _, f := range a.Failures {
			fmt.Fprintf(e.stderr, "  %s: %s\n", f.Peer, f.Error)
		}
	}
	if a.Cursor != "" {
		fmt.Fprintf(e.stderr, "more: --cursor %s\n", a.Cursor)
	}
}

// search asks the running node, or searches the repo offline.
func (e *env) search(ctx context.Context, sq api.SearchQuery) (api.SearchAnswer, error) {
	cl, err := e.daemon(ctx)
	if err != nil {
		return api.SearchAnswer{}, err
	}
	if cl != nil {
		return cl.Search(ctx, sq)
	}
	in, err := e.in()
	if err != nil {
		return api.SearchAnswer{}, err
	}
	var a node.SearchAnswer
	err = e.withRepo(ctx, func(ctx context.Context, r *repo.Repo) error {
		a, err = node.SearchRepo(ctx, r, node.SearchRequest{In: in, Terms: sq.Terms, Cursor: sq.Cursor, Limit: sq.Limit})
		return err
	})
	return api.Answer(a), err
}
