// Package p2ptest builds real libp2p hosts on loopback for tests (TCP only,
// no relay, closed when the test ends) and node configs that stay there.
package p2ptest

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/ddc-project/ddc/node/repo"
)

// NewHost starts a host on a free 127.0.0.1 TCP port.
func NewHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.DisableRelay(),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// Connect connects a to b within ten seconds.
func Connect(t testing.TB, a, b host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// Info is h's address record.
func Info(h host.Host) peer.AddrInfo { return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()} }

// NodeConfig is the default repo config moved onto loopback for a test:
// TCP and QUIC on free 127.0.0.1 ports, no mDNS (it would join nodes of
// other tests), bootstrapped off the given multiaddrs. The DHT mode stays
// the default: the LAN DHT serves on loopback.
func NodeConfig(bootstrap ...string) repo.Config {
	cfg := repo.DefaultConfig()
	cfg.Network.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	cfg.Network.MDNS = false
	cfg.Network.Bootstrap = append([]string{}, bootstrap...)
	return cfg
}
