package dht

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Protocol constants, each with why.
const (
	// DefaultProvideConcurrency is how many announcements run at once: a
	// 1 GiB file is 1,025 CIDs, and one lookup at a time would take minutes.
	DefaultProvideConcurrency = 32
	// DefaultReprovideInterval re-announces everything well within the
	// provider record lifetime (48 h in kad-dht).
	DefaultReprovideInterval = 12 * time.Hour
	// provideTimeout bounds one announcement.
	provideTimeout = time.Minute
)

// Mode says whether the node answers DHT queries.
type Mode int

// Modes.
const (
	ModeAuto   Mode = iota // server once reachable from outside, client before
	ModeServer             // always answer queries (loopback tests, public nodes)
	ModeClient             // only ask
)

// Options configures the DHT.
type Options struct {
	Cluster            string
	Mode               Mode
	Bootstrap          []peer.AddrInfo
	ProvideConcurrency int
	ReprovideInterval  time.Duration
	Logger             *slog.Logger
}

// DefaultOptions returns the defaults for the default cluster.
func DefaultOptions() Options {
	return Options{Cluster: "default", ProvideConcurrency: DefaultProvideConcurrency, ReprovideInterval: DefaultReprovideInterval}
}

// Validate reports the first bad option.
func (o Options) Validate() error {
	switch {
	case o.Cluster == "":
		return errors.New("dht: empty cluster name")
	case o.ProvideConcurrency < 1:
		return errors.New("dht: provide concurrency must be at least 1")
	case o.ReprovideInterval < time.Minute:
		return errors.New("dht: reprovide interval under a minute")
	}
	return nil
}

// Prefix is the DHT protocol prefix of a cluster.
func Prefix(cluster string) protocol.ID { return protocol.ID("/ddc/" + cluster) }

// DHT is a cluster's Kademlia DHT on a host.
type DHT struct {
	kad  *kaddht.IpfsDHT
	h    host.Host
	opts Options
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New starts the DHT on h. It does not block on the network: Bootstrap
// connects to the bootstrap peers.
func New(h host.Host, opts Options) (*DHT, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	mode := map[Mode]kaddht.ModeOpt{ModeAuto: kaddht.ModeAuto, ModeServer: kaddht.ModeServer, ModeClient: kaddht.ModeClient}[opts.Mode]
	kad, err := kaddht.New(h,
		kaddht.ProtocolPrefix(Prefix(opts.Cluster)),
		kaddht.Mode(mode),
		kaddht.BootstrapPeers(opts.Bootstrap...),
	)
	if err != nil {
		return nil, fmt.Errorf("start dht: %w", err)
	}
	d := &DHT{kad: kad, h: h, opts: opts, log: opts.Logger}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d, nil
}

// Bootstrap connects to the bootstrap peers it can reach and refreshes the
// routing table. It fails only when there were peers and none answered.
func (d *DHT) Bootstrap(ctx context.Context) error {
	var errs []error
	ok := 0
	for _, p := range d.opts.Bootstrap {
		if p.ID == d.h.ID() {
			continue
		}
		if err := d.h.Connect(ctx, p); err != nil {
			errs = append(errs, fmt.Errorf("bootstrap peer %s: %w", p.ID, err))
			continue
		}
		ok++
	}
	if ok == 0 && len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, err := range errs {
		d.log.Warn("bootstrap peer unreachable", "err", err)
	}
	return d.kad.Bootstrap(ctx)
}

// WaitRouting waits until the routing table has at least n peers.
func (d *DHT) WaitRouting(ctx context.Context, n int) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for d.kad.RoutingTable().Size() < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("routing table has %d peers, want %d: %w", d.kad.RoutingTable().Size(), n, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// Provide announces every CID and returns when all are announced or ctx
// ends; the errors of those that failed are joined. Many CIDs share one
// lookup per keyspace region (see provideBatched); a few are announced one
// lookup each, ProvideConcurrency at a time.
func (d *DHT) Provide(ctx context.Context, cids []cid.Cid) error {
	if len(cids) >= 2<<d.regionBits() {
		return d.provideBatched(ctx, cids)
	}
	return d.provideEach(ctx, cids)
}

func (d *DHT) provideEach(ctx context.Context, cids []cid.Cid) error {
	sem := make(chan struct{}, d.opts.ProvideConcurrency)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, c := range cids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			pctx, cancel := context.WithTimeout(ctx, provideTimeout)
			defer cancel()
			if err := d.kad.Provide(pctx, c, true); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("announce %s: %w", c, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// FindProviders streams up to n holders of c (0: no limit) as the lookup
// finds them; the channel closes when it ends.
func (d *DHT) FindProviders(ctx context.Context, c cid.Cid, n int) <-chan peer.AddrInfo {
	return d.kad.FindProvidersAsync(ctx, c, n)
}

// StartReprovider announces everything list yields once the routing table
// has a peer, and every ReprovideInterval after, until Close.
func (d *DHT) StartReprovider(list func(ctx context.Context, fn func(cid.Cid) error) error) {
	d.wg.Go(func() {
		for {
			if d.WaitRouting(d.ctx, 1) != nil {
				return
			}
			start := time.Now()
			var batch []cid.Cid
			err := list(d.ctx, func(c cid.Cid) error {
				batch = append(batch, c)
				if len(batch) == 4096 {
					err := d.Provide(d.ctx, batch)
					batch = batch[:0]
					if d.ctx.Err() != nil {
						return d.ctx.Err()
					}
					if err != nil {
						d.log.Debug("reprovide", "err", err)
					}
				}
				return nil
			})
			if err == nil && len(batch) > 0 {
				if err := d.Provide(d.ctx, batch); err != nil {
					d.log.Debug("reprovide", "err", err)
				}
			}
			d.log.Debug("reprovide sweep done", "took", time.Since(start))
			select {
			case <-d.ctx.Done():
				return
			case <-time.After(d.opts.ReprovideInterval):
			}
		}
	})
}

// RoutingPeers lists the peers in the routing table with their addresses,
// for saving across restarts.
func (d *DHT) RoutingPeers() []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, p := range d.kad.RoutingTable().ListPeers() {
		if addrs := d.h.Peerstore().Addrs(p); len(addrs) > 0 {
			out = append(out, peer.AddrInfo{ID: p, Addrs: addrs})
		}
	}
	return out
}

// Close stops the reprovider and the DHT.
func (d *DHT) Close() error {
	d.cancel()
	d.wg.Wait()
	return d.kad.Close()
}
