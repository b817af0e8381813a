package node

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ddc-project/ddc/node/repo"
)

// connGrace is how long a new connection is safe from the connection
// manager's trimming: long enough to finish a DHT lookup and a first fetch.
const connGrace = time.Minute

// newHost builds the libp2p host a node runs on: TCP and QUIC, TLS and
// Noise, yamux, the resource manager scaled to this machine, a connection
// manager with the configured watermarks, and the NAT traversal a node
// behind a router needs (AutoNAT service, hole punching, relay client).
func newHost(key crypto.PrivKey, nc repo.NetworkConfig, psk pnet.PSK, reg prometheus.Registerer) (host.Host, error) {
	cm, err := connmgr.NewConnManager(nc.ConnsLow, nc.ConnsHigh, connmgr.WithGracePeriod(connGrace))
	if err != nil {
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	str, err := rcmgr.NewStatsTraceReporter() // the resource manager's metrics, as Kubo reports them
	if err != nil {
		cm.Close()
		return nil, fmt.Errorf("resource manager metrics: %w", err)
	}
	rcmgr.MustRegisterWith(reg)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(rcmgr.DefaultLimits.AutoScale()), rcmgr.WithTraceReporter(str))
	if err != nil {
		cm.Close()
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	listen := nc.Listen
	transports := []libp2p.Option{libp2p.Transport(tcp.NewTCPTransport), libp2p.Transport(quic.NewTransport)}
	if psk != nil {
		// A private network: the key guards every connection, which QUIC
		// cannot do (its handshake is its own), so the node speaks TCP.
		transports = []libp2p.Option{libp2p.Transport(tcp.NewTCPTransport), libp2p.PrivateNetwork(psk)}
		listen = slices.DeleteFunc(slices.Clone(listen), func(a string) bool { return strings.Contains(a, "/quic") })
		if len(listen) == 0 {
			cm.Close()
			rm.Close()
			return nil, fmt.Errorf("a swarm key needs a TCP listen address; the config lists only QUIC ones: %v", nc.Listen)
		}
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(listen...),
		// TLS first: on CPUs with AES instructions (both ends, as Go's
		// TLS checks) AES-GCM costs a fraction of Noise's ChaCha20, and
		// it is what go-libp2p and Kubo prefer too. Noise stays for peers
		// that only speak it.
		libp2p.Security(tls.ID, tls.New),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.PrometheusRegisterer(reg), // the swarm's, identify's, relay's and hole punching's metrics
		libp2p.ConnectionManager(cm),
		libp2p.EnableNATService(),
		libp2p.EnableHolePunching(),
		libp2p.EnableRelay(),
		libp2p.SwarmOpts(swarm.WithDialRanker(dialRanker)),
	}
	opts = append(opts, transports...)
	if len(nc.Announce) > 0 {
		announce := make([]ma.Multiaddr, 0, len(nc.Announce))
		for _, s := range nc.Announce {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				cm.Close()
				rm.Close()
				return nil, fmt.Errorf("announce address %q: %w", s, err)
			}
			announce = append(announce, a)
		}
		opts = append(opts, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return announce }))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		cm.Close()
		rm.Close()
		return nil, fmt.Errorf("start libp2p host on %v: %w", nc.Listen, err)
	}
	return h, nil
}

// mdnsService is the DNS-SD name a cluster's nodes find each other under.
func mdnsService(cluster string) string { return "_ddc-" + cluster + "._udp" }

// mdnsNotifee connects to peers mDNS finds on the local network.
type mdnsNotifee struct {
	ctx context.Context
	h   host.Host
	log *slog.Logger
}

// mdnsYield is how long the node with the larger peer ID waits for the
// other to dial it before dialling itself (see HandlePeerFound).
const mdnsYield = time.Second

// HandlePeerFound connects to a peer found on the local network. Both
// nodes find each other at about the same moment; were both to dial, TCP
// from the shared listen port (go-libp2p reuses it) would make one
// simultaneous-open socket on which both sides act as the initiator, the
// handshake fails and the nodes end up on QUIC. So the node with the
// smaller peer ID dials, and the other dials only if no connection came
// within mdnsYield.
func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == m.h.ID() {
		return
	}
	go func() {
		if m.h.ID() > ai.ID {
			t := time.NewTimer(mdnsYield)
			defer t.Stop()
			select {
			case <-m.ctx.Done():
				return
			case <-t.C:
			}
			if m.h.Network().Connectedness(ai.ID) == network.Connected {
				return
			}
		}
		ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
		defer cancel()
		if err := m.h.Connect(ctx, ai); err != nil {
			m.log.Debug("mdns peer unreachable", "peer", ai.ID, "err", err)
			return
		}
		m.log.Info("connected to local peer found by mdns", "peer", ai.ID)
	}()
}

var _ mdns.Notifee = mdnsNotifee{}
