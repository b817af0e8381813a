package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/node/api"
	"github.com/ddc-project/ddc/node/repo"
)

func newNodeCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "node", Short: "Run the node and describe it"}
	c.AddCommand(newNodeRunCmd(e), newNodeIDCmd(e))
	return c
}

func newNodeRunCmd(e *env) *cobra.Command {
	var (
		nf       netFlags
		logLevel string
	)
	c := &cobra.Command{
		Use:   "run",
		Short: "Run a node on the repo (created on first run) until SIGINT or SIGTERM",
		Long: `Run a node: join the cluster, serve and announce the repo's pieces, and
answer the HTTP API that ddc commands on this repo then go through.
The repo is created on first run, with the network flags written to its
config; on later runs the flags apply to this run only. The addresses the
node bound and its API address are written to node.json in the repo.
SIGINT or SIGTERM stops the node cleanly; a second one forces it.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageErr(fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel))
			}
			log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
			if !repo.IsInitialized(e.repoPath) {
				id, err := e.initRepo(cmd, &nf)
				if err != nil {
					return err
				}
				log.Info("initialized repo", "repo", e.repoPath, "peer", id)
			}
			r, err := repo.Open(e.repoPath, log)
			if err != nil {
				return err
			}
			nf.apply(cmd, &r.Config.Network)
			if err := r.Config.Network.Validate(); err != nil {
				r.Close()
				return usageErr(err)
			}
			return runNode(cmd.Context(), e, r, log)
		},
	}
	nf.add(c)
	c.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return c
}

// forceDebounce is how soon after the stopping signal another one counts
// as a request to force the stop.
const forceDebounce = 250 * time.Millisecond

// runNode serves r until ctx ends, then stops in order: the API, the
// node (announcements, streams, host), the repo.
func runNode(ctx context.Context, e *env, r *repo.Repo, log *slog.Logger) error {
	n, err := node.Start(r, node.Options{Logger: log})
	if err != nil {
		return err
	}
	srv, err := api.Listen(n, r.Config.Network.API, log)
	if err != nil {
		n.Close()
		return err
	}
	st := repo.State{PID: os.Getpid(), PeerID: n.ID().String(), Cluster: n.Cluster(), API: srv.Addr()}
	for _, a := range n.Addrs() {
		st.Addrs = append(st.Addrs, a.String())
	}
	if err := r.WriteState(st); err != nil {
		srv.Close()
		n.Close()
		return err
	}
	fmt.Fprintf(e.stdout, "peer ID %s\ncluster %s\nAPI http://%s\n", st.PeerID, st.Cluster, st.API)
	for _, a := range st.Addrs {
		fmt.Fprintf(e.stdout, "listening on %s\n", a)
	}
	<-ctx.Done()
	log.Info("stopping; a second signal forces")
	force := make(chan os.Signal, 1)
	signal.Notify(force, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(force)
	first := time.Now()
	go func() {
		for range force {
			// One signal sent to the process and to its group (as
			// timeout(1) does) arrives twice at once: that is not a
			// second request.
			if time.Since(first) < forceDebounce {
				continue
			}
			log.Error("forced stop")
			os.Exit(exitError)
		}
	}()
	err = errors.Join(srv.Close(), r.RemoveState(), n.Close())
	if err == nil {
		log.Info("stopped")
	}
	return err
}

func newNodeIDCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "id",
		Short: "Show the node's peer ID, addresses and cluster",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := e.daemon(cmd.Context())
			if err != nil {
				return err
			}
			var id api.ID
			if cl != nil {
				if id, err = cl.ID(cmd.Context()); err != nil {
					return err
				}
			} else {
				// No node running: what the repo says, without addresses.
				err := e.withRepo(cmd.Context(), func(_ context.Context, r *repo.Repo) error {
					id = api.ID{PeerID: r.PeerID().String(), Cluster: r.Config.Network.Cluster, Addrs: []string{}}
					return nil
				})
				if err != nil {
					return err
				}
			}
			if e.json {
				return writeJSON(e.stdout, map[string]any{"peer_id": id.PeerID, "cluster": id.Cluster, "addrs": id.Addrs, "online": cl != nil})
			}
			fmt.Fprintf(e.stdout, "peer ID %s\ncluster %s\n", id.PeerID, id.Cluster)
			if cl == nil {
				fmt.Fprintln(e.stdout, "offline (no node running on this repo)")
			}
			for _, a := range id.Addrs {
				fmt.Fprintln(e.stdout, a)
			}
			return nil
		},
	}
	e.jsonFlag(c)
	return c
}

// daemon returns a client of the node running on the repo, or nil when
// none is.
func (e *env) daemon(ctx context.Context) (*api.Client, error) {
	cl, err := api.Find(ctx, e.repoPath)
	if errors.Is(err, api.ErrNoDaemon) {
		return nil, nil
	}
	return cl, err
}

// needDaemon is daemon for commands that only make sense online.
func (e *env) needDaemon(ctx context.Context) (*api.Client, error) {
	cl, err := e.daemon(ctx)
	if err == nil && cl == nil {
		err = fmt.Errorf("%w on repo %s: start one with 'ddc node run --repo %s'", api.ErrNoDaemon, e.repoPath, e.repoPath)
	}
	return cl, err
}
