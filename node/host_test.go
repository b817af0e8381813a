package node_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// Two nodes secure their connection with TLS, the cheaper of the two on
// CPUs with AES instructions; a peer that only speaks Noise still gets in.
func TestHostSecurity(t *testing.T) {
	a := start(t, filepath.Join(t.TempDir(), "a"))
	defer a.Close()
	b := start(t, filepath.Join(t.TempDir(), "b"))
	defer b.Close()
	connect := func(from host.Host) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := from.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	security := func(p peer.ID) protocol.ID {
		t.Helper()
		conns := a.Host().Network().ConnsToPeer(p)
		if len(conns) == 0 {
			t.Fatalf("no connection from %s", p)
		}
		return conns[0].ConnState().Security
	}

	connect(b.Host())
	if got := security(b.ID()); got != tls.ID {
		t.Errorf("node to node: %s, want %s", got, tls.ID)
	}

	noiseOnly, err := libp2p.New(
		libp2p.NoListenAddrs,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.DisableRelay(),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer noiseOnly.Close()
	connect(noiseOnly)
	if got := security(noiseOnly.ID()); got != noise.ID {
		t.Errorf("noise-only peer: %s, want %s", got, noise.ID)
	}
}

// Two nodes that both listen on TCP and QUIC on a private (here loopback)
// address connect over TCP, which carries bulk transfers at the link's
// rate on a LAN.
func TestLANPrefersTCP(t *testing.T) {
	a := start(t, filepath.Join(t.TempDir(), "a"))
	defer a.Close()
	b := start(t, filepath.Join(t.TempDir(), "b"))
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Host().Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	var quic bool
	for _, ad := range a.Host().Addrs() {
		quic = quic || strings.Contains(ad.String(), "/quic-v1")
	}
	if !quic {
		t.Fatalf("node a listens on %v: no QUIC address to choose from", a.Host().Addrs())
	}
	for _, c := range b.Host().Network().ConnsToPeer(a.ID()) {
		if s := c.RemoteMultiaddr().String(); !strings.Contains(s, "/tcp/") {
			t.Errorf("connection over %s, want TCP", s)
		}
	}
}
