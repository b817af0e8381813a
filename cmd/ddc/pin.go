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

func newPinCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "pin",
		Short: "Keep files from garbage collection",
		Long: `A pinned file, and every piece under it, is kept by 'ddc repo gc' and by
the quota; so are the files kept for a bucket. put and import pin what
they store; what get and the gateway fetch is cache unless 'get --pin'.`,
	}
	add := &cobra.Command{
		Use:   "add CID",
		Short: "Pin a file; through a running node, what the repo lacks of it is fetched first",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withPin(cmd.Context(), args[0], func(cl *api.Client, c cid.Cid) error { return cl.PinAdd(cmd.Context(), c) },
				func(r *repo.Repo, c cid.Cid) error { return r.Store.Pin(cmd.Context(), c) }, "pinned")
		},
	}
	rm := &cobra.Command{
		Use:   "rm CID",
		Short: "Unpin a file: 'ddc repo gc' then removes what no other root keeps",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withPin(cmd.Context(), args[0], func(cl *api.Client, c cid.Cid) error { return cl.PinRm(cmd.Context(), c) },
				api.Unpin, "unpinned")
		},
	}
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the pinned files",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			pins, err := e.pins(cmd.Context())
			if err != nil {
				return err
			}
			if e.json {
				return writeJSON(e.stdout, pins)
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			for _, p := range pins {
				fmt.Fprintf(w, "%s\t%s\n", p.CID, p.Pinned.Local().Format(time.DateTime))
			}
			return w.Flush()
		},
	}
	e.jsonFlag(ls)
	c.AddCommand(add, rm, ls)
	return c
}

// withPin changes the pin of arg through the running node, or offline on
// the repo opened for writing, and says what it did.
func (e *env) withPin(ctx context.Context, arg string, online func(*api.Client, cid.Cid) error, offline func(*repo.Repo, cid.Cid) error, did string) error {
	c, err := pieces.ParseCID(arg)
	if err != nil {
		return err
	}
	cl, err := e.daemon(ctx)
	if err != nil {
		return err
	}
	if cl != nil {
		err = online(cl, c)
	} else {
		err = e.withWritableRepo(func(r *repo.Repo) error { return offline(r, c) })
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s %s\n", did, c)
	return nil
}

func (e *env) pins(ctx context.Context) ([]api.Pin, error) {
	cl, err := e.daemon(ctx)
	if err != nil {
		return nil, err
	}
	if cl != nil {
		return cl.PinLs(ctx)
	}
	var pins []api.Pin
	err = e.withRepo(ctx, func(ctx context.Context, r *repo.Repo) error {
		pins, err = api.Pins(ctx, r)
		return err
	})
	return pins, err
}

// withWritableRepo runs fn on the repo opened for writing, with no node.
func (e *env) withWritableRepo(fn func(*repo.Repo) error) error {
	r, err := repo.Open(e.repoPath, nil)
	if err != nil {
		return err
	}
	defer r.Close()
	return fn(r)
}
