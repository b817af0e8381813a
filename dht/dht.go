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
	"github.com/libp2p/go-libp2p-kad-dht/dual"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/ddc-project/ddc/bucket"
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

// ErrNoPeers means neither DHT has a peer in its routing table: there is
// nobody to announce to or ask.
var ErrNoPeers = errors.New("no DHT peers")

// Mode says whether the node answers DHT queries on the WAN DHT. The LAN
// DHT always answers.
type Mode int

// Modes.
const (
	ModeAuto   Mode = iota // server once reachable from outside, client before
	ModeServer             // always answer queries (public nodes)
	ModeClient             // only ask
)

// Options configures the DHT.
type Options struct {
	Cluster            string
	Mode               Mode // of the WAN DHT
	Bootstrap          []peer.AddrInfo
	ProvideConcurrency int
	ReprovideInterval  time.Duration
	// MaxRecordAge is how long the node keeps a value another put in its
	// DHT store (bucket and name records) before dropping it (0: kad-dht's
	// default, 36 h); their publishers put them again well within it.
	MaxRecordAge time.Duration
	Logger       *slog.Logger
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
	case o.Mode < ModeAuto || o.Mode > ModeClient:
		return fmt.Errorf("dht: unknown mode %d", o.Mode)
	case o.ProvideConcurrency < 1:
		return errors.New("dht: provide concurrency must be at least 1")
	case o.ReprovideInterval < time.Minute:
		return errors.New("dht: reprovide interval under a minute")
	case o.MaxRecordAge < 0:
		return errors.New("dht: negative record age")
	}
	return nil
}

// Prefix is the DHT protocol prefix of a cluster.
func Prefix(cluster string) protocol.ID { return protocol.ID("/ddc/" + cluster) }

// DHT is a cluster's Kademlia DHT on a host: kad-dht's dual pair of a LAN
// DHT (peers reached on private and loopback addresses; always a server,
// so nodes of one network or one machine find each other with no public
// address) and a WAN DHT (peers on public addresses; a server once AutoNAT
// finds the node reachable, or as the mode says). Announcements go to
// both and lookups ask both.
type DHT struct {
	closeOnce sync.Once
	closeErr  error

	dual *dual.DHT
	h    host.Host
	opts Options
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// table is one of the two DHTs, named for logs and status.
type table struct {
	name string
	kad  *kaddht.IpfsDHT
}

// New starts the DHT on h. It does not block on the network: Bootstrap
// connects to the bootstrap peers.
func New(h host.Host, opts Options) (*DHT, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	mode := map[Mode]kaddht.ModeOpt{ModeAuto: kaddht.ModeAuto, ModeServer: kaddht.ModeServer, ModeClient: kaddht.ModeClient}[opts.Mode]
	common := []kaddht.Option{
		kaddht.ProtocolPrefix(Prefix(opts.Cluster)),
		kaddht.BootstrapPeers(opts.Bootstrap...),
		kaddht.NamespacedValidator(bucket.RecordNamespace, bucket.RecordValidator{}),
		kaddht.NamespacedValidator(bucket.NameNamespace, bucket.NameValidator{}),
	}
	if opts.MaxRecordAge > 0 {
		common = append(common, kaddht.MaxRecordAge(opts.MaxRecordAge))
	}
	dd, err := dual.New(h,
		dual.DHTOption(common...),
		dual.WanDHTOption(kaddht.Mode(mode)),
		// dual's LAN DHT drops loopback addresses from the records it
		// gives out, so nodes sharing one machine (the README's first
		// steps, tests) could find a holder but not dial it. Keep every
		// address: a peer that cannot reach one tries the next.
		dual.LanDHTOption(
			kaddht.Mode(kaddht.ModeServer),
			kaddht.AddressFilter(func(addrs []ma.Multiaddr) []ma.Multiaddr { return addrs }),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("start dht: %w", err)
	}
	d := &DHT{dual: dd, h: h, opts: opts, log: opts.Logger}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d, nil
}

func (d *DHT) tables() []table {
	return []table{{"lan", d.dual.LAN}, {"wan", d.dual.WAN}}
}

// Bootstrap connects to the bootstrap peers it can reach and refreshes the
// routing tables. It fails only when there were peers and none answered.
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
	return d.dual.Bootstrap(ctx)
}

// RoutingSize is the number of peers in the larger routing table.
func (d *DHT) RoutingSize() int {
	return max(d.dual.LAN.RoutingTable().Size(), d.dual.WAN.RoutingTable().Size())
}

// WaitRouting waits until a routing table has at least n peers.
func (d *DHT) WaitRouting(ctx context.Context, n int) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for d.RoutingSize() < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("routing tables have %d peers, want %d: %w", d.RoutingSize(), n, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// TableStatus describes one of the two DHTs.
type TableStatus struct {
	Name  string `json:"name"`  // lan or wan
	Mode  string `json:"mode"`  // server or client, as it runs now
	Peers int    `json:"peers"` // in its routing table
}

// Status describes the LAN and the WAN DHT.
func (d *DHT) Status() []TableStatus {
	var out []TableStatus
	for _, t := range d.tables() {
		mode := "client"
		if t.kad.Mode() == kaddht.ModeServer {
			mode = "server"
		}
		out = append(out, TableStatus{Name: t.name, Mode: mode, Peers: t.kad.RoutingTable().Size()})
	}
	return out
}

// Provide announces every CID in each DHT that has peers, and returns when
// they are announced or ctx ends. A CID counts as announced when one DHT
// took it; when none did, the errors are joined. Many CIDs share one
// lookup per keyspace region (see provideBatched); a few are announced one
// lookup each, ProvideConcurrency at a time.
func (d *DHT) Provide(ctx context.Context, cids []cid.Cid) error {
	var mu sync.Mutex
	var errs []error
	active, ok := 0, false
	var wg sync.WaitGroup
	for _, t := range d.tables() {
		if t.kad.RoutingTable().Size() == 0 {
			continue
		}
		active++
		wg.Go(func() {
			var err error
			if len(cids) >= 2<<regionBits(t.kad) {
				err = d.provideBatched(ctx, t.kad, cids)
			} else {
				err = d.provideEach(ctx, t.kad, cids)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s dht: %w", t.name, err))
			} else {
				ok = true
			}
		})
	}
	wg.Wait()
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case active == 0:
		return fmt.Errorf("announce %d CIDs: %w", len(cids), ErrNoPeers)
	case ok:
		for _, err := range errs {
			d.log.Debug("announce in one dht failed", "err", err)
		}
		return nil
	}
	return errors.Join(errs...)
}

func (d *DHT) provideEach(ctx context.Context, kad *kaddht.IpfsDHT, cids []cid.Cid) error {
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
			if err := kad.Provide(pctx, c, true); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("announce %s: %w", c, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// FindProviders streams up to n holders of c (0: no limit) as the lookups
// in both DHTs find them, each holder once; the channel closes when both
// end. Query events (routing.RegisterForQueryEvents on ctx) report the
// peers asked.
func (d *DHT) FindProviders(ctx context.Context, c cid.Cid, n int) <-chan peer.AddrInfo {
	return d.dual.FindProvidersAsync(ctx, c, n)
}

// StartReprovider announces everything list yields once a routing table
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

// ClosestPeers lists the peers the network knows closest to c's key in
// the Kademlia keyspace (both DHTs' lookups, each peer once), nearest
// first, and the first error when no lookup found any.
func (d *DHT) ClosestPeers(ctx context.Context, c cid.Cid) ([]peer.ID, error) {
	key := string(c.Hash())
	seen := make(map[peer.ID]bool)
	var out []peer.ID
	var errs []error
	for _, t := range d.tables() {
		if t.kad.RoutingTable().Size() == 0 {
			continue
		}
		ps, err := t.kad.GetClosestPeers(ctx, key)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s dht: %w", t.name, err))
		}
		for _, p := range ps {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	SortByDistance(c, out)
	return out, nil
}

// SortByDistance orders ps by their XOR distance to c's key, nearest
// first: the order placement takes holders in.
func SortByDistance(c cid.Cid, ps []peer.ID) {
	copy(ps, kb.SortClosestPeers(ps, kb.ConvertKey(string(c.Hash()))))
}

// NearestPeers lists at most count peers of both routing tables closest
// to c's key, nearest first: what this node knows already, with no
// lookup and no traffic.
func (d *DHT) NearestPeers(c cid.Cid, count int) []peer.ID {
	key := kb.ConvertKey(string(c.Hash()))
	seen := make(map[peer.ID]bool)
	var out []peer.ID
	for _, t := range d.tables() {
		for _, p := range t.kad.RoutingTable().NearestPeers(key, count) {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	SortByDistance(c, out)
	return out[:min(len(out), count)]
}

// RoutingPeers lists the peers in both routing tables with their
// addresses, for saving across restarts.
func (d *DHT) RoutingPeers() []peer.AddrInfo {
	seen := make(map[peer.ID]bool)
	var out []peer.AddrInfo
	for _, t := range d.tables() {
		for _, p := range t.kad.RoutingTable().ListPeers() {
			if seen[p] {
				continue
			}
			seen[p] = true
			if addrs := d.h.Peerstore().Addrs(p); len(addrs) > 0 {
				out = append(out, peer.AddrInfo{ID: p, Addrs: addrs})
			}
		}
	}
	return out
}

// Close stops the reprovider and both DHTs; later calls return what the
// first returned.
func (d *DHT) Close() error {
	d.closeOnce.Do(func() {
		d.cancel()
		d.wg.Wait()
		d.closeErr = d.dual.Close()
	})
	return d.closeErr
}
