package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/dht"
	"github.com/ddc-project/ddc/exchange"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/search"
)

// Node tuning, each with why.
const (
	// DefaultFindTimeout bounds the wait for a holder of a piece that no
	// known peer has: long enough for a DHT lookup across a large cluster,
	// short enough that a CID nobody holds fails while the user waits.
	DefaultFindTimeout = 30 * time.Second
	// DefaultReadAhead is how many chunks a network read keeps in flight:
	// enough to fill every holder's window on a fast link.
	DefaultReadAhead = 32
	// peersSaveInterval is how often the routing table is written to the
	// repo, so a node killed without a clean stop still rejoins quickly.
	peersSaveInterval = 5 * time.Minute
	// bootstrapTimeout bounds joining the DHT at start.
	bootstrapTimeout = 30 * time.Second
)

// Options configures a Node beyond its repo's config.
type Options struct {
	Logger      *slog.Logger
	FindTimeout time.Duration // DefaultFindTimeout when 0
	// RecordTTL is how long a bucket record counts as current (see
	// DefaultRecordTTL, used when 0); the repo's network.record_ttl
	// when set wins.
	RecordTTL time.Duration
	ReadAhead int // up to MaxReadAhead; DefaultReadAhead when 0
}

// MaxReadAhead bounds Options.ReadAhead: each chunk in flight holds a
// piece buffer.
const MaxReadAhead = 1024

// Validate reports the first option out of range.
func (o Options) Validate() error {
	switch {
	case o.FindTimeout < 0:
		return fmt.Errorf("node: find timeout %s is negative (0: the default, %s)", o.FindTimeout, DefaultFindTimeout)
	case o.RecordTTL < 0:
		return fmt.Errorf("node: record TTL %s is negative (0: the default, %s)", o.RecordTTL, DefaultRecordTTL)
	case o.ReadAhead < 0 || o.ReadAhead > MaxReadAhead:
		return fmt.Errorf("node: read-ahead %d out of range [1, %d] (0: the default, %d)", o.ReadAhead, MaxReadAhead, DefaultReadAhead)
	}
	return nil
}

// Node is a running ddc node: the repo's store served over the exchange
// protocol, its pieces announced in the cluster's DHT, and files of other
// nodes fetched from every holder at once.
type Node struct {
	closeOnce sync.Once
	closeErr  error

	repo   *repo.Repo
	host   host.Host
	dht    *dht.DHT
	srv    *exchange.Server
	search *search.Server
	ann    *announcer
	mdns   io.Closer
	opts   Options
	log    *slog.Logger

	records  *records         // the bucket records the access rule reads
	names    *names           // names resolved lately (names.go)
	holders  holderMemory     // who served each file lately
	flights  flights          // fetches shared by reads (flights.go)
	pool     *exchange.Pool   // sessions to holders, shared by reads
	verifier *bucket.Verifier // grant chains checked once per token
	tokens   tokenCache       // tokens parsed once per text

	joined      chan struct{} // closed once the first bootstrap is over
	publishSoon chan struct{} // a publish found no DHT peer: publishRecords retries

	fetched atomic.Uint64 // bytes of pieces fetched from other nodes
	metrics *Metrics

	pulls          chan struct{} // a token per push being pulled (push.go)
	repairs        repairs       // what the holder checks saw (repair.go)
	privateCluster bool          // a swarm key keeps the cluster to its members

	quotaNudge chan struct{} // set when the store has a quota
	evictMu    sync.Mutex    // one eviction at a time

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start brings up a node on the open repo r. The node owns r from here and
// closes it in Close. Joining the DHT goes on in the background: Start does
// not wait on bootstrap peers that may be down.
func Start(r *repo.Repo, opts Options) (n *Node, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.FindTimeout == 0 {
		opts.FindTimeout = DefaultFindTimeout
	}
	if opts.ReadAhead == 0 {
		opts.ReadAhead = DefaultReadAhead
	}
	if err := (exchange.FetcherOptions{Cluster: r.Config.Network.Cluster}).Validate(); err != nil {
		return nil, err // newGetter counts on it
	}
	nc := r.Config.Network
	n = &Node{repo: r, opts: opts, log: opts.Logger, joined: make(chan struct{}), publishSoon: make(chan struct{}, 1), verifier: bucket.NewVerifier(), metrics: newMetrics()}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.records = n.newRecords()
	n.names = n.newNames()
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	psk, err := r.SwarmKey()
	if err != nil {
		return nil, err
	}
	n.privateCluster = psk != nil
	if n.host, err = newHost(r.Identity, nc, psk, n.metrics.reg); err != nil {
		return nil, err
	}
	boot, err := bootstrapPeers(r)
	if err != nil {
		return nil, err
	}
	do := dht.DefaultOptions()
	do.Cluster, do.Bootstrap, do.Logger = nc.Cluster, boot, n.log
	do.MaxRecordAge = time.Duration(nc.DHTRecordAge)
	do.Mode = map[string]dht.Mode{"auto": dht.ModeAuto, "server": dht.ModeServer, "client": dht.ModeClient}[nc.DHTMode]
	if n.dht, err = dht.New(n.host, do); err != nil { // before the servers: their access rule looks records up
		return nil, err
	}
	so := exchange.DefaultServerOptions()
	so.Cluster, so.Logger, so.Access = nc.Cluster, n.log, n.serveAccess
	so.Served = func(bytes int) { n.metrics.servedPiece("exchange", bytes) }
	if n.srv, err = exchange.NewServer(n.host, r.Store, so); err != nil {
		return nil, err
	}
	n.pool = exchange.NewPool(n.host, n.Cluster(), 0)
	n.startSearch()
	n.startRecordPush()
	n.startNamePush()
	n.ann = newAnnouncer(n.dht, n.log)
	n.startPushes()
	n.startChecks()
	n.startTombstones()
	if err = n.startRepair(); err != nil {
		return nil, err
	}
	n.registerNode()
	n.startQuota()
	n.startScrub()
	n.dht.StartReprovider(func(ctx context.Context, fn func(cid.Cid) error) error {
		if err := n.eachHeldBucket(ctx, func(id bucket.ID) error { return fn(bucket.HoldersKey(id)) }); err != nil {
			return err
		}
		return r.Store.List(ctx, func(c cid.Cid, _ int) error { return fn(c) })
	})
	if nc.MDNS {
		m := mdns.NewMdnsService(n.host, mdnsService(nc.Cluster), mdnsNotifee{ctx: n.ctx, h: n.host, log: n.log})
		if err := m.Start(); err != nil {
			n.log.Warn("mdns discovery off", "err", err)
		} else {
			n.mdns = m
		}
	}
	n.wg.Go(n.join)
	n.wg.Go(n.publishRecords)
	n.wg.Go(n.republishNames)
	n.wg.Go(func() { n.records.keepCurrent(n.ctx) })
	n.log.Info("node started", "peer", n.host.ID(), "cluster", nc.Cluster, "addrs", n.host.Addrs())
	return n, nil
}

// waitRouting waits until a DHT routing table has a peer, the first
// bootstrap is over, or ctx ends, so a lookup made just after start does
// not search an empty network, nor wait once there is someone to ask.
func (n *Node) waitRouting(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-n.joined:
			cancel()
		case <-ctx.Done():
		}
	}()
	n.dht.WaitRouting(ctx, 1)
}

// bootstrapPeers are the configured bootstrap peers and the routing-table
// peers saved at the last stop.
func bootstrapPeers(r *repo.Repo) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range r.Config.Network.Bootstrap {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, fmt.Errorf("bootstrap peer %q: %w", s, err)
		}
		out = append(out, *ai)
	}
	saved, err := r.LoadPeers()
	if err != nil {
		return nil, err
	}
	return append(out, saved...), nil
}

// join bootstraps the DHT, then saves the routing table now and then.
func (n *Node) join() {
	ctx, cancel := context.WithTimeout(n.ctx, bootstrapTimeout)
	if err := n.dht.Bootstrap(ctx); err != nil && n.ctx.Err() == nil {
		n.log.Warn("dht bootstrap", "err", err)
	} else if len(n.host.Network().Peers()) > 0 {
		// Connected peers enter the routing table once identified.
		n.dht.WaitRouting(ctx, 1)
	}
	cancel()
	close(n.joined)
	t := time.NewTicker(peersSaveInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			n.savePeers()
		}
	}
}

func (n *Node) savePeers() {
	if ps := n.dht.RoutingPeers(); len(ps) > 0 {
		if err := n.repo.SavePeers(ps); err != nil {
			n.log.Warn("save routing table", "err", err)
		}
	}
}

// Close stops announcing, closes streams and the host, saves the routing
// table and closes the repo. Later calls return what the first returned.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { n.closeErr = n.close() })
	return n.closeErr
}

func (n *Node) close() error {
	n.cancel()
	n.wg.Wait()
	var errs []error
	if n.mdns != nil {
		errs = append(errs, n.mdns.Close())
	}
	if n.ann != nil {
		n.ann.close()
	}
	if n.dht != nil {
		n.savePeers()
		errs = append(errs, n.dht.Close())
	}
	if n.srv != nil {
		errs = append(errs, n.srv.Close())
	}
	if n.pool != nil {
		errs = append(errs, n.pool.Close())
	}
	if n.search != nil {
		errs = append(errs, n.search.Close())
	}
	if n.host != nil {
		errs = append(errs, n.host.Close())
	}
	n.records.wg.Wait() // no request is left to start a lookup
	errs = append(errs, n.repo.Close())
	return errors.Join(errs...)
}

// Repo is the node's repo.
func (n *Node) Repo() *repo.Repo { return n.repo }

// Host is the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// ID is the node's peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Cluster is the cluster the node is in.
func (n *Node) Cluster() string { return n.repo.Config.Network.Cluster }

// Addrs are the node's addresses with its /p2p/ ID, as others dial them.
func (n *Node) Addrs() []ma.Multiaddr {
	addrs, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	return addrs
}

// ListenAddrs are the addresses the host bound, ports resolved.
func (n *Node) ListenAddrs() []ma.Multiaddr {
	addrs, _ := n.host.Network().InterfaceListenAddresses()
	return addrs
}

// Peers are the peers connected now.
func (n *Node) Peers() []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, p := range n.host.Network().Peers() {
		ai := peer.AddrInfo{ID: p}
		for _, c := range n.host.Network().ConnsToPeer(p) {
			ai.Addrs = append(ai.Addrs, c.RemoteMultiaddr())
		}
		out = append(out, ai)
	}
	return out
}

// Connect dials a peer.
func (n *Node) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if ai.ID == n.host.ID() {
		return errors.New("connect: that is this node's own peer ID")
	}
	if err := n.host.Connect(ctx, ai); err != nil {
		return fmt.Errorf("connect %s: %w", ai.ID, err)
	}
	return nil
}

// Providers streams holders of c found in the DHT, this node first when
// it holds c itself. The channel closes when the lookup ends.
func (n *Node) Providers(ctx context.Context, c cid.Cid) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo)
	go func() {
		defer close(out)
		if has, _ := n.repo.Store.Has(c); has {
			select {
			case out <- peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}:
			case <-ctx.Done():
				return
			}
		}
		for ai := range n.dht.FindProviders(ctx, c, 0) {
			if ai.ID == n.host.ID() {
				continue
			}
			select {
			case out <- ai:
			case <-ctx.Done():
			}
		}
	}()
	return out
}

// Put stores rd as a file, pins it, and queues all its pieces for
// announcing; it returns once the file is durable, not announced.
func (n *Node) Put(ctx context.Context, rd io.Reader, opt pieces.BuildOptions) (pieces.BuildResult, error) {
	return n.PutIn(ctx, rd, opt, nil)
}

// Announcing reports the CIDs announced since start and those waiting.
func (n *Node) Announcing() (done uint64, pending int) { return n.ann.status() }

// DHTStatus describes the node's LAN and WAN DHTs.
func (n *Node) DHTStatus() []dht.TableStatus { return n.dht.Status() }

// Files calls fn for every pinned file.
func (n *Node) Files(ctx context.Context, fn func(repo.FileInfo) error) error {
	return n.repo.Files(ctx, fn)
}

// FilesIn calls fn for every file of a bucket the node holds (every
// pinned file when in is nil).
func (n *Node) FilesIn(ctx context.Context, in *In, fn func(repo.FileInfo) error) error {
	if in == nil {
		return n.repo.Files(ctx, fn)
	}
	return n.repo.BucketFiles(ctx, in.Bucket, fn)
}

// Fetched is how many bytes of pieces the node has fetched from other
// nodes since it started: what reads of pieces it lacked cost the network.
func (n *Node) Fetched() uint64 { return n.fetched.Load() }
