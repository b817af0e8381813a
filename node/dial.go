package node

import (
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// lanQUICDelay is how long a dial to a peer on a private or loopback
// address waits for TCP before trying the rest (QUIC): a TCP and TLS
// handshake on a LAN takes a few milliseconds.
const lanQUICDelay = 250 * time.Millisecond

// dialRanker is go-libp2p's default ranking (QUIC first) for public
// addresses, but dials a peer's private and loopback TCP addresses first.
// On a LAN, bulk transfers over TCP run at the link's rate, while
// quic-go's user-space UDP reached less than half of it in the same
// namespaces (docs/benchmarks.md, LAN test bed); across the Internet
// QUIC's quicker handshake and NAT traversal matter more.
func dialRanker(addrs []ma.Multiaddr) []network.AddrDelay {
	var lanTCP, rest []ma.Multiaddr
	for _, a := range addrs {
		if isTCP(a) && manet.IsPrivateAddr(a) {
			lanTCP = append(lanTCP, a)
		} else {
			rest = append(rest, a)
		}
	}
	if len(lanTCP) == 0 {
		return swarm.DefaultDialRanker(addrs)
	}
	out := make([]network.AddrDelay, 0, len(addrs))
	for i, a := range lanTCP {
		out = append(out, network.AddrDelay{Addr: a, Delay: time.Duration(i) * swarm.PrivateTCPDelay})
	}
	for _, ad := range swarm.DefaultDialRanker(rest) {
		ad.Delay += lanQUICDelay
		out = append(out, ad)
	}
	return out
}

// isTCP reports a plain TCP address (not WebSocket or relayed).
func isTCP(a ma.Multiaddr) bool {
	tcp := false
	for _, c := range a {
		switch c.Protocol().Code {
		case ma.P_TCP:
			tcp = true
		case ma.P_WS, ma.P_WSS, ma.P_CIRCUIT, ma.P_TLS, ma.P_HTTP, ma.P_HTTPS:
			return false
		}
	}
	return tcp
}
