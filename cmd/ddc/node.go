package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ddc-project/ddc/internal/memlimit"
	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/node/api"
	"github.com/ddc-project/ddc/node/gateway"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces/store"
)

func newNodeCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "node", Short: "Run the node and describe it"}
	c.AddCommand(newNodeRunCmd(e), newNodeIDCmd(e), newNodeStatusCmd(e), newNodeStopCmd(e))
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
			// The flags go over the config before the store opens: it
			// takes its quota from there.
			r, err := openForNode(cmd.Context(), e.repoPath, log, func(c *repo.Config) error {
				if err := nf.apply(cmd, c); err != nil {
					return err
				}
				if err := c.Validate(); err != nil {
					return usageErr(err)
				}
				return nil
			})
			if err != nil {
				return err
			}
			return runNode(cmd.Context(), e, r, log)
		},
	}
	nf.add(c)
	c.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return c
}

// lockWait is how long a starting node waits for offline readers of its
// repo (a 'ddc cat' or 'ddc ls' run just before) to finish.
const lockWait = 5 * time.Second

// openForNode opens the repo for a node, waiting up to lockWait while
// offline readers hold it, so a read command run as the node starts does
// not make the start fail.
func openForNode(ctx context.Context, path string, log *slog.Logger, flags func(*repo.Config) error) (*repo.Repo, error) {
	ctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		r, err := repo.OpenEdited(path, log, flags)
		if !errors.Is(err, store.ErrLocked) {
			return r, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (waited %s for other commands on the repo to finish)", err, lockWait)
		case <-t.C:
		}
	}
}

// memorySlack is how far past its need and its gateway's read-ahead a
// node's heap may grow before the collector works harder (see memlimit).
const memorySlack = 64 << 20

// forceDebounce is how soon after the stopping signal another one counts
// as a request to force the stop.
const forceDebounce = 250 * time.Millisecond

// runNode serves r until ctx ends, then stops in order: the API, the
// node (announcements, streams, host), the repo.
func runNode(ctx context.Context, e *env, r *repo.Repo, log *slog.Logger) error {
	if lim := r.Config.MemoryLimitMiB; lim > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(lim) << 20)
	}
	var secret string
	if addr := r.Config.Network.API; !repo.Loopback(addr) {
		s, err := repo.APISecret(r.Path)
		if err != nil {
			r.Close()
			return fmt.Errorf("the API would listen on %s, beyond loopback, where every request needs the repo's API secret, and there is none: %w", addr, err)
		}
		secret = s
		log.Info("the API listens beyond loopback: every request needs the repo's API secret", "api", addr)
	}
	n, err := node.Start(r, node.Options{Logger: log})
	if err != nil {
		return err
	}
	srv, err := api.ListenWithSecret(n, r.Config.Network.API, secret, log)
	if err != nil {
		n.Close()
		return err
	}
	st := repo.State{PID: os.Getpid(), PeerID: n.ID().String(), Cluster: n.Cluster(), API: srv.Addr()}
	var gw *gateway.Server
	if r.Config.Gateway.Address != "" {
		opts := gateway.OptionsFrom(r.Config.Gateway)
		opts.Logger = log
		if gw, err = gateway.Listen(n, opts); err != nil {
			srv.Close()
			n.Close()
			return err
		}
		st.Gateway = gw.Addr()
		srv.SetGateway(gw.Addr())
	}
	if r.Config.MemoryLimitMiB == 0 && os.Getenv("GOMEMLIMIT") == "" {
		h := memlimit.Headroom{Slack: memorySlack, Every: 5 * time.Second}
		if gw != nil {
			h.Budget, h.InUse = int64(r.Config.Gateway.ReadAheadMiB)<<20, gw.ReadAheadTaken
		}
		go h.Run(ctx)
	}
	closeGateway := func() error {
		if gw == nil {
			return nil
		}
		return gw.Close()
	}
	if sock, err := filepath.Abs(repo.SocketPath(r.Path)); err == nil && len(sock) < 108 {
		if err := srv.ListenCopy(sock); err != nil {
			log.Warn("copy socket off; gets stream through the HTTP API", "err", err)
		} else {
			st.Socket = sock
		}
	} else {
		log.Info("repo path too long for a Unix socket; gets stream through the HTTP API", "repo", r.Path)
	}
	for _, a := range n.Addrs() {
		st.Addrs = append(st.Addrs, a.String())
	}
	if err := r.WriteState(st); err != nil {
		closeGateway()
		srv.Close()
		n.Close()
		return err
	}
	fmt.Fprintf(e.stdout, "peer ID %s\ncluster %s\nAPI http://%s\n", st.PeerID, st.Cluster, st.API)
	if st.Gateway != "" {
		fmt.Fprintf(e.stdout, "gateway http://%s\n", st.Gateway)
	}
	for _, a := range st.Addrs {
		fmt.Fprintf(e.stdout, "listening on %s\n", a)
	}
	select {
	case <-ctx.Done():
	case <-srv.StopRequested():
	}
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
	err = errors.Join(closeGateway(), srv.Close(), r.RemoveState(), n.Close())
	if err == nil {
		log.Info("stopped")
	}
	return err
}

func newNodeIDCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "id",
		Short: "Show the node's peer ID, addresses and cluster",
		Long: `Show the node's peer ID, cluster and addresses. With no node running it
reads the repo's config and identity only, never its store, so it cannot
stop a node from starting on the repo. --json adds what 'node status' shows.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.showNode(cmd.Context(), func(id api.ID, online bool) error {
				fmt.Fprintf(e.stdout, "peer ID %s\ncluster %s\n", id.PeerID, id.Cluster)
				if !online {
					fmt.Fprintln(e.stdout, "offline (no node running on this repo)")
				}
				for _, a := range id.Addrs {
					fmt.Fprintln(e.stdout, a)
				}
				if id.Gateway != "" {
					fmt.Fprintf(e.stdout, "gateway http://%s\n", id.Gateway)
				}
				return nil
			})
		},
	}
	e.jsonFlag(c)
	return c
}

func newNodeStatusCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "status",
		Short: "Show the node's peers, each DHT's mode and routing table, and announcements",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.showNode(cmd.Context(), func(id api.ID, online bool) error {
				w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintf(w, "peer ID\t%s\ncluster\t%s\n", id.PeerID, id.Cluster)
				if !online {
					fmt.Fprintln(w, "node\toffline (no node running on this repo)")
					return w.Flush()
				}
				fmt.Fprintf(w, "connected peers\t%d\n", id.Peers)
				for _, d := range id.DHT {
					fmt.Fprintf(w, "%s DHT\t%s, %d peers in routing table\n", strings.ToUpper(d.Name), d.Mode, d.Peers)
				}
				fmt.Fprintf(w, "announced\t%d CIDs, %d pending\n", id.Announced, id.AnnouncePending)
				return w.Flush()
			})
		},
	}
	e.jsonFlag(c)
	return c
}

// showNode prints what the node says of itself: as statusJSON with
// --json, through human otherwise.
func (e *env) showNode(ctx context.Context, human func(id api.ID, online bool) error) error {
	id, online, err := e.nodeID(ctx)
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, statusJSON(id, online))
	}
	return human(id, online)
}

// nodeID asks the running node, or reads the repo's identity offline.
func (e *env) nodeID(ctx context.Context) (id api.ID, online bool, err error) {
	cl, err := e.daemon(ctx)
	if err != nil {
		return id, false, err
	}
	if cl != nil {
		id, err = cl.ID(ctx)
		return id, true, err
	}
	cfg, pid, err := repo.Identity(e.repoPath)
	if err != nil {
		return id, false, err
	}
	return api.ID{PeerID: pid.String(), Cluster: cfg.Network.Cluster, Addrs: []string{}}, false, nil
}

// statusJSON is what 'node id --json' and 'node status --json' print.
func statusJSON(id api.ID, online bool) map[string]any {
	out := map[string]any{"peer_id": id.PeerID, "cluster": id.Cluster, "addrs": id.Addrs, "online": online}
	if online {
		out["peers"] = id.Peers
		out["dht"] = id.DHT
		out["announced"] = id.Announced
		out["announce_pending"] = id.AnnouncePending
		out["fetched_bytes"] = id.Fetched
		out["names_republished"] = id.NamesRepublished
		if id.Gateway != "" {
			out["gateway"] = id.Gateway
		}
	}
	return out
}

// daemon returns a client of the node running on the repo, or nil when
// none is.
func (e *env) daemon(ctx context.Context) (*api.Client, error) {
	if _, err := e.in(); err != nil {
		return nil, err
	}
	cl, err := api.Find(ctx, e.repoPath)
	if errors.Is(err, api.ErrNoDaemon) {
		return nil, nil
	}
	if err == nil && e.bucket != "" {
		cl = cl.In(e.bucket, e.token)
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

// stopWait bounds how long 'node stop' waits for the node to exit.
const stopWait = time.Minute

func newNodeStopCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop the node running on the repo cleanly, and wait until it has",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := e.needDaemon(cmd.Context())
			if err != nil {
				return err
			}
			if err := cl.Stop(cmd.Context()); err != nil {
				return err
			}
			// Stopped once the repo is free: the node lets go of it last.
			ctx, cancel := context.WithTimeout(cmd.Context(), stopWait)
			defer cancel()
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			for {
				r, err := repo.OpenReadOnly(e.repoPath, nil)
				if err == nil {
					r.Close()
					fmt.Fprintln(e.stdout, "stopped")
					return nil
				}
				if !errors.Is(err, store.ErrLocked) {
					return err
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("the node on %s took the stop but still holds the repo after %s", e.repoPath, stopWait)
				case <-t.C:
				}
			}
		},
	}
}
