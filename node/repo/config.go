package repo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/pieces/store"
)

// ConfigVersion is the config format this build writes.
const ConfigVersion = 1

// Config is the repo's config.json.
type Config struct {
	Version int           `json:"version"`
	PeerID  string        `json:"peer_id"` // derived from identity.key, for people to read
	Store   StoreConfig   `json:"store"`
	Network NetworkConfig `json:"network"`
	Gateway GatewayConfig `json:"gateway"`
	// MemoryLimitMiB is the node's soft memory limit for Go's garbage
	// collector, which collects harder as the heap nears it instead of
	// letting it grow to twice what is live. 0, the default, keeps the
	// limit 64 MiB past what the node needs besides its gateway's
	// read-ahead, plus that read-ahead, as what it needs changes
	// (internal/memlimit); the GOMEMLIMIT environment variable, when set,
	// wins (GOMEMLIMIT=off: none).
	MemoryLimitMiB int `json:"memory_limit_mib"`
	// Replication is what the node keeps for others' buckets.
	Replication ReplicationConfig `json:"replication"`
}

// ReplicationConfig says whose files this node keeps when another node
// pushes them (a bucket's replication factor). A push is accepted only
// with a reason: a put grant from the bucket's owner that names this
// node's key (or a bearer one), a bucket or owner listed here, or, in a
// private cluster (a swarm key: membership is trust), any member's push.
// In the public cluster a node keeps nobody's files unless told to.
type ReplicationConfig struct {
	// StoreFor lists buckets (ddcb...) and owners (did:key:...) whose
	// pushes are accepted; "*" accepts anyone's.
	StoreFor []string `json:"store_for,omitempty"`
	// RefuseClusterPushes refuses the pushes of a private cluster's
	// members that bring no other reason.
	RefuseClusterPushes bool `json:"refuse_cluster_pushes,omitempty"`
	// Grace is how long a file of a replicated bucket may have fewer
	// holders than its factor (or this node be a surplus one) before the
	// node acts: long enough that a restart is not a loss (0: the
	// default, DefaultReplicationGrace).
	Grace Duration `json:"grace,omitempty"`
	// CheckInterval is how often the node checks the holders of each file
	// it keeps for a replicated bucket, the checks spread over it (0: the
	// default, DefaultReplicationCheck).
	CheckInterval Duration `json:"check_interval,omitempty"`
}

// Replication defaults, and why: ten minutes outlasts a restart or an
// upgrade, and a check of every file each ten minutes is one DHT lookup
// and a few probes a file, which a node of a thousand 1 GiB files
// (a million pieces) makes less than twice a second.
const (
	DefaultReplicationGrace = 10 * time.Minute
	DefaultReplicationCheck = 10 * time.Minute
)

// GraceOrDefault is Grace, or its default when unset.
func (r ReplicationConfig) GraceOrDefault() time.Duration {
	if r.Grace > 0 {
		return time.Duration(r.Grace)
	}
	return DefaultReplicationGrace
}

// CheckOrDefault is CheckInterval, or its default when unset.
func (r ReplicationConfig) CheckOrDefault() time.Duration {
	if r.CheckInterval > 0 {
		return time.Duration(r.CheckInterval)
	}
	return DefaultReplicationCheck
}

// Validate reports the first entry of StoreFor that names neither a
// bucket nor an owner.
func (r ReplicationConfig) Validate() error {
	if r.Grace < 0 || r.CheckInterval < 0 {
		return fmt.Errorf("grace %s, check_interval %s: want 0 (the default) or more", time.Duration(r.Grace), time.Duration(r.CheckInterval))
	}
	for _, s := range r.StoreFor {
		if s == "*" {
			continue
		}
		if _, err := bucket.ParseID(s); err == nil {
			continue
		}
		if _, err := bucket.ParsePublicKey(s); err != nil {
			return fmt.Errorf("store_for %q: neither a bucket ID (ddcb...) nor an owner (did:key:...), nor *", s)
		}
	}
	return nil
}

// GatewayConfig is the HTTP gateway: read-only, safe to expose.
type GatewayConfig struct {
	// Address is the host:port the gateway listens on; empty: no gateway.
	// It is on loopback by default: browsers and players on this machine
	// can stream with no setup, and serving others is a choice to make
	// (ddc init --gateway 0.0.0.0:8040).
	Address string `json:"address"`
	// MaxRequests bounds the requests served at once; more get 503.
	MaxRequests int `json:"max_requests"`
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes int `json:"max_header_bytes"`
	// RequestTimeout bounds a whole request, body included.
	RequestTimeout Duration `json:"request_timeout"`
	// RetrievalTimeout bounds the wait for the first bytes of a piece the
	// node lacks; past it the answer is 504.
	RetrievalTimeout Duration `json:"retrieval_timeout"`
	// ReadAheadMiB bounds the bytes of chunks that all requests together
	// hold in flight, in MiB.
	ReadAheadMiB int `json:"read_ahead_mib"`
	// Hosts are the host names the gateway answers to besides localhost
	// and IP addresses (a name a reverse proxy passes on, say): a request
	// for any other is refused, so a DNS name rebound to the gateway's
	// address reaches nothing.
	Hosts []string `json:"hosts,omitempty"`
}

// Duration is a time.Duration written as "30s" in the config.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want a number with a unit, such as 30s or 1h", b)
	}
	*d = Duration(v)
	return nil
}

// DefaultGatewayAddress is where the gateway listens unless told.
const DefaultGatewayAddress = "127.0.0.1:8040"

// Validate reports the first bad gateway setting.
func (g GatewayConfig) Validate() error {
	if g.Address != "" {
		if _, port, err := net.SplitHostPort(g.Address); err != nil {
			return fmt.Errorf("address %q: %w (want host:port, or empty for no gateway)", g.Address, err)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("address %q: bad port", g.Address)
		}
	}
	switch {
	case g.MaxRequests < 1:
		return fmt.Errorf("max_requests %d: want at least 1", g.MaxRequests)
	case g.MaxHeaderBytes < 1024:
		return fmt.Errorf("max_header_bytes %d: want at least 1024", g.MaxHeaderBytes)
	case g.RequestTimeout <= 0 || g.RetrievalTimeout <= 0:
		return fmt.Errorf("request_timeout %s and retrieval_timeout %s: want positive durations", time.Duration(g.RequestTimeout), time.Duration(g.RetrievalTimeout))
	case g.ReadAheadMiB < 1:
		return fmt.Errorf("read_ahead_mib %d: want at least 1", g.ReadAheadMiB)
	}
	for _, h := range g.Hosts {
		if h == "" || strings.ContainsAny(h, ":/ ") {
			return fmt.Errorf("hosts: %q is not a host name (no port, scheme or path)", h)
		}
	}
	return nil
}

// NetworkConfig is how the node joins its cluster.
type NetworkConfig struct {
	Cluster string `json:"cluster"` // the DHT and exchange the node takes part in
	// SwarmKey, when set, names the file (relative to the repo, or
	// absolute) of the cluster's swarm key: the node then connects only
	// to peers that hold the same key (libp2p private networks, over TCP;
	// QUIC cannot carry one).
	SwarmKey string `json:"swarm_key,omitempty"`
	// Listen are the multiaddrs the host listens on; port 0 picks a free
	// port, and the node writes the addresses it bound to node.json.
	Listen []string `json:"listen"`
	// Announce, when set, replaces the addresses the node tells others.
	Announce []string `json:"announce,omitempty"`
	// Bootstrap are peers (multiaddrs with /p2p/ID) to join the DHT through.
	Bootstrap []string `json:"bootstrap"`
	// API is the host:port of the HTTP API (port 0: any free port); beyond
	// loopback, every request needs the repo's API secret.
	API string `json:"api"`
	// MDNS finds peers on the local network.
	MDNS bool `json:"mdns"`
	// DHTMode is auto (server once reachable from outside), server or client.
	DHTMode string `json:"dht_mode"`
	// ConnsLow and ConnsHigh are the connection manager's watermarks.
	ConnsLow  int `json:"conns_low"`
	ConnsHigh int `json:"conns_high"`
	// RecordTTL is how long a bucket record counts as current after the
	// cluster's DHT last confirmed it: the bound within which the node
	// stops serving strangers a bucket made private (0: the default,
	// one minute).
	RecordTTL Duration `json:"record_ttl,omitempty"`
	// NameTTL is how long a name the node resolved is answered from its
	// cache before it looks again (0: the default, one minute).
	NameTTL Duration `json:"name_ttl,omitempty"`
	// NameRepublish is how often the node puts the name records it keeps
	// (its own, and those of buckets it holds) in the DHT again (0: the
	// default, four hours).
	NameRepublish Duration `json:"name_republish,omitempty"`
	// DHTRecordAge is how long the node's DHT keeps a record another
	// node put in it (0: kad-dht's default, 36 hours).
	DHTRecordAge Duration `json:"dht_record_age,omitempty"`
}

// StoreConfig configures the piece store.
type StoreConfig struct {
	BlockSize int64 `json:"block_size"` // bytes at which a block file is sealed
	// BufferedIO writes block data through the page cache instead of with
	// O_DIRECT (which the store uses where the filesystem supports it).
	BufferedIO bool `json:"buffered_io,omitempty"`
	// MaxBytes bounds the store's live bytes (0: none, the default: a node
	// cannot tell how much of a shared disk is its to take, and a full
	// disk already refuses writes without losing anything). Past
	// HighWater of it, cache (fetched files nobody pinned) is evicted,
	// least recently used first, down to LowWater; a put that cannot fit
	// fails, naming the quota.
	MaxBytes uint64 `json:"storage_max,omitempty"`
	// ScrubInterval is how long after one scrub pass began the next may
	// begin: a pass re-hashes every stored piece against its CID (0: the
	// default, a day; negative: no scrub).
	ScrubInterval Duration `json:"scrub_interval,omitempty"`
	// ScrubRateMiB bounds a pass's reads, in MiB a second (0: the
	// default, 16).
	ScrubRateMiB int `json:"scrub_rate_mib,omitempty"`
}

// Scrub defaults, and why: a pass a day finds a failing disk well before
// the copies elsewhere are gone, and 16 MiB/s is a small share of any
// disk's reads (a 1 TB repo takes 18 hours).
const (
	DefaultScrubInterval = 24 * time.Hour
	DefaultScrubRateMiB  = 16
)

// The quota's watermarks, as shares of StoreConfig.MaxBytes.
const (
	HighWater = 0.90
	LowWater  = 0.80
)

// DefaultConfig returns the config Init writes unless told otherwise.
func DefaultConfig() Config {
	return Config{
		Version: ConfigVersion,
		Store:   StoreConfig{BlockSize: store.DefaultBlockSize},
		Network: NetworkConfig{
			Cluster:   "default",
			Listen:    []string{"/ip4/0.0.0.0/tcp/4040", "/ip4/0.0.0.0/udp/4040/quic-v1", "/ip6/::/tcp/4040", "/ip6/::/udp/4040/quic-v1"},
			Bootstrap: []string{},
			API:       "127.0.0.1:5040",
			MDNS:      true,
			DHTMode:   "auto",
			ConnsLow:  100,
			ConnsHigh: 400,
		},
		Gateway: GatewayConfig{
			Address:          DefaultGatewayAddress,
			MaxRequests:      1024,
			MaxHeaderBytes:   16 << 10,
			RequestTimeout:   Duration(time.Hour),
			RetrievalTimeout: Duration(30 * time.Second),
			ReadAheadMiB:     64,
		},
	}
}

// Validate reports the first bad value.
func (c Config) Validate() error {
	if c.Version != ConfigVersion {
		return fmt.Errorf("%w: version %d, this ddc reads %d", ErrConfig, c.Version, ConfigVersion)
	}
	if err := c.storeOptions().Validate(); err != nil {
		return fmt.Errorf("%w: store: %w", ErrConfig, err)
	}
	if err := c.Network.Validate(); err != nil {
		return fmt.Errorf("%w: network: %w", ErrConfig, err)
	}
	if err := c.Gateway.Validate(); err != nil {
		return fmt.Errorf("%w: gateway: %w", ErrConfig, err)
	}
	if err := c.Replication.Validate(); err != nil {
		return fmt.Errorf("%w: replication: %w", ErrConfig, err)
	}
	if c.MemoryLimitMiB < 0 {
		return fmt.Errorf("%w: memory_limit_mib %d: want 0 (a headroom over what the node needs) or more", ErrConfig, c.MemoryLimitMiB)
	}
	return nil
}

// Validate reports the first bad network setting.
func (n NetworkConfig) Validate() error {
	if !validCluster(n.Cluster) {
		return fmt.Errorf("cluster %q: use 1-64 letters, digits, '-' or '_'", n.Cluster)
	}
	if len(n.Listen) == 0 {
		return errors.New("no listen addresses")
	}
	for _, lists := range []struct {
		name  string
		addrs []string
	}{{"listen", n.Listen}, {"announce", n.Announce}} {
		for _, a := range lists.addrs {
			if _, err := ma.NewMultiaddr(a); err != nil {
				return fmt.Errorf("%s address %q: %w", lists.name, a, err)
			}
		}
	}
	for _, a := range n.Bootstrap {
		if _, err := peer.AddrInfoFromString(a); err != nil {
			return fmt.Errorf("bootstrap peer %q: %w (want a multiaddr ending in /p2p/<peer ID>)", a, err)
		}
	}
	if err := checkAPIAddr(n.API); err != nil {
		return err
	}
	switch n.DHTMode {
	case "auto", "server", "client":
	default:
		return fmt.Errorf("dht_mode %q: want auto, server or client", n.DHTMode)
	}
	if n.ConnsLow < 1 || n.ConnsHigh < n.ConnsLow {
		return fmt.Errorf("conns_low %d and conns_high %d: want 1 <= low <= high", n.ConnsLow, n.ConnsHigh)
	}
	if n.NameTTL < 0 || n.NameRepublish < 0 || n.DHTRecordAge < 0 {
		return fmt.Errorf("name_ttl %s, name_republish %s, dht_record_age %s: want positive durations, or 0 for the defaults", time.Duration(n.NameTTL), time.Duration(n.NameRepublish), time.Duration(n.DHTRecordAge))
	}
	if n.RecordTTL < 0 {
		return fmt.Errorf("record_ttl %s: want a positive duration, or 0 for the default", time.Duration(n.RecordTTL))
	}
	return nil
}

// checkAPIAddr accepts host:port on an IP. Beyond loopback, the API asks
// every request for the repo's secret (see APISecret).
func checkAPIAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("api address %q: %w", a, err)
	}
	if ip := net.ParseIP(host); ip == nil {
		return fmt.Errorf("api address %q: want an IP such as 127.0.0.1 (beyond loopback, requests need the repo's API secret)", a)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("api address %q: bad port", a)
	}
	return nil
}

func validCluster(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func (c Config) storeOptions() store.Options {
	o := store.DefaultOptions()
	o.BlockSize = c.Store.BlockSize
	o.DirectIO = !c.Store.BufferedIO
	o.MaxBytes = c.Store.MaxBytes
	return o
}

func readConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	c := DefaultConfig() // a section the file lacks keeps its defaults
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// writeFileAtomic writes data to path through a synced temporary file and a
// rename, so a crash leaves the old file or the new one, never a mix.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := writeTemp(filepath.Dir(path), filepath.Base(path), data, mode)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// writeTemp writes data to a new, synced temporary file in dir, named
// after base, and returns its path.
func writeTemp(dir, base string, data []byte, mode os.FileMode) (path string, err error) {
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", err
	}
	return tmp.Name(), tmp.Close()
}
