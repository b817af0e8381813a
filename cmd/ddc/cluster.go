package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/node/repo"
)

func newClusterCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "cluster",
		Short: "Private clusters: swarm keys",
		Long: `A cluster is a group of nodes whose DHT, transfers and mDNS stay among
themselves: its name ('ddc init --cluster NAME') scopes their protocols. A
swarm key makes it private: a node started with it ('ddc init --cluster NAME
--swarm-key FILE') completes connections only with nodes that hold the same
key, over TCP (QUIC cannot carry one).`,
	}
	key := &cobra.Command{Use: "key", Short: "Swarm keys"}
	var out string
	gen := &cobra.Command{
		Use:   "gen",
		Short: "Write a new swarm key (the format IPFS uses) to stdout or -o FILE",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := repo.NewSwarmKey()
			if err != nil {
				return err
			}
			if out == "" {
				_, err = e.stdout.Write(k)
				return err
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("swarm key: %w", err)
			}
			if _, err := f.Write(k); err != nil {
				f.Close()
				return fmt.Errorf("swarm key: %w", err)
			}
			return f.Close()
		},
	}
	gen.Flags().StringVarP(&out, "output", "o", "", "write the key to this new file (mode 0600)")
	key.AddCommand(gen)
	c.AddCommand(key)
	return c
}
