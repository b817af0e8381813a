package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/node/repo"
)

func newInitCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a repo: identity key, config and piece store",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := repo.Init(e.repoPath, repo.DefaultConfig())
			if err != nil {
				return err
			}
			if e.json {
				return writeJSON(e.stdout, map[string]string{"repo": e.repoPath, "peer_id": id.String()})
			}
			fmt.Fprintf(e.stdout, "initialized ddc repo at %s\npeer ID %s\n", e.repoPath, id)
			return nil
		},
	}
	e.jsonFlag(c)
	return c
}
