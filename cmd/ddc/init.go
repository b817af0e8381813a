package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newInitCmd(e *env) *cobra.Command {
	var nf netFlags
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a repo: identity key, config and piece store",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := e.initRepo(cmd, &nf)
			if err != nil {
				return err
			}
			if e.json {
				return writeJSON(e.stdout, map[string]string{"repo": e.repoPath, "peer_id": id})
			}
			fmt.Fprintf(e.stdout, "initialized ddc repo at %s\npeer ID %s\n", e.repoPath, id)
			return nil
		},
	}
	nf.add(c)
	e.jsonFlag(c)
	return c
}
