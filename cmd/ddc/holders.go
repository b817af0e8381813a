package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/node/api"
)

// statHolders prints who holds c: the keepers of the file in its bucket,
// then each piece, in the tree's order, with its providers.
func (e *env) statHolders(ctx context.Context, c cid.Cid) error {
	cl, err := e.needDaemon(ctx)
	if err != nil {
		return err
	}
	var ps []api.HolderLine
	out, err := cl.Holders(ctx, c, func(l api.HolderLine) { ps = append(ps, l) })
	if err != nil {
		return err
	}
	slices.SortFunc(ps, func(a, b api.HolderLine) int { return a.Index - b.Index })
	if e.json {
		if ps == nil {
			ps = []api.HolderLine{}
		}
		for i := range ps {
			if ps[i].Holders == nil {
				ps[i].Holders = []string{}
			}
		}
		if out.Keepers == nil {
			out.Keepers = []string{}
		}
		err = writeJSON(e.stdout, map[string]any{"cid": c.String(), "replicas": out.Replicas, "keepers": out.Keepers, "pieces": ps, "error": out.Error})
	} else {
		w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "cid\t%s\n", c)
		if out.Replicas > 0 {
			fmt.Fprintf(w, "keepers\t%d of %d: %s\n", len(out.Keepers), out.Replicas, strings.Join(out.Keepers, " "))
		}
		for _, p := range ps {
			kind := "descriptor"
			if p.Data {
				kind = "data"
			}
			fmt.Fprintf(w, "%s\t%s %s\t%d: %s\n", p.CID, kind, humanSize(p.Size), len(p.Holders), strings.Join(p.Holders, " "))
		}
		err = w.Flush()
	}
	if err == nil && out.Error != "" {
		err = fmt.Errorf("holders of %s: %s", c, out.Error)
	}
	return err
}
