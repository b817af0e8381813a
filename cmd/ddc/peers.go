package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/node/api"
	"github.com/ddc-project/ddc/pieces"
)

func newPeersCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "peers",
		Short: "List the peers the node is connected to",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := e.needDaemon(cmd.Context())
			if err != nil {
				return err
			}
			ps, err := cl.Peers(cmd.Context())
			if err != nil {
				return err
			}
			if e.json {
				return writeJSON(e.stdout, ps)
			}
			for _, p := range ps {
				fmt.Fprintf(e.stdout, "%s %s\n", p.ID, strings.Join(p.Addrs, " "))
			}
			return nil
		},
	}
	e.jsonFlag(c)
	return c
}

func newConnectCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "connect MULTIADDR",
		Short: "Connect the node to a peer (a multiaddr ending in /p2p/ID)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := e.needDaemon(cmd.Context())
			if err != nil {
				return err
			}
			p, err := cl.Connect(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "connected to %s\n", p.ID)
			return nil
		},
	}
}

func newProvidersCmd(e *env) *cobra.Command {
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "providers CID",
		Short: "List the nodes that hold a piece, from the DHT (this node first if it does)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := pieces.ParseCID(args[0])
			if err != nil {
				return err
			}
			if timeout <= 0 {
				return usageErr(fmt.Errorf("--timeout must be positive"))
			}
			cl, err := e.needDaemon(cmd.Context())
			if err != nil {
				return err
			}
			var all []api.Peer
			err = cl.Providers(cmd.Context(), k, timeout, func(p api.Peer) error {
				if e.json {
					all = append(all, p)
					return nil
				}
				_, err := fmt.Fprintf(e.stdout, "%s %s\n", p.ID, strings.Join(p.Addrs, " "))
				return err
			})
			if err != nil {
				return err
			}
			if e.json {
				if all == nil {
					all = []api.Peer{}
				}
				return writeJSON(e.stdout, all)
			}
			return nil
		},
	}
	c.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to search")
	e.jsonFlag(c)
	return c
}
