package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/pieces"
)

func newRmCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "rm CID -b BUCKET",
		Short: "Delete a file from a bucket, here and at every node that keeps it",
		Long: `Delete a file from a bucket: with the owner's key in this repo, or a
grant of delete (--token). The node signs a tombstone and hands it to the
nodes that keep the file; each drops its copy to cache (repo gc reclaims
it) and keeps the tombstone, so a keeper that was away drops its copy
when it comes back instead of copying it to others again. Needs a
running node.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := pieces.ParseCID(args[0])
			if err != nil {
				return err
			}
			if e.bucket == "" {
				return usageErr(errors.New("rm needs -b: a file is deleted from a bucket"))
			}
			cl, err := e.needDaemon(cmd.Context())
			if err != nil {
				return err
			}
			d, err := cl.Delete(cmd.Context(), c)
			if err != nil {
				return err
			}
			if e.json {
				if d.Told == nil {
					d.Told = []string{}
				}
				err = writeJSON(e.stdout, d)
			} else {
				_, err = fmt.Fprintf(e.stdout, "deleted %s; told %d nodes that kept it: %s\n", c, len(d.Told), strings.Join(d.Told, " "))
			}
			if err == nil && d.Error != "" {
				err = fmt.Errorf("rm %s: some keepers were not told: %s", c, d.Error)
			}
			return err
		},
	}
	e.bucketFlags(c)
	e.jsonFlag(c)
	return c
}
