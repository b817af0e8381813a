package node

import (
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Holder memory, each limit with why.
const (
	// holdersTTL is how long the holders that served a file are tried
	// first by its next reads: long enough for a player's many range
	// requests and a gateway's repeated visitors, short enough that a
	// holder that left is soon forgotten (discovery runs when they fail).
	holdersTTL = 10 * time.Minute
	// maxRemembered bounds the files remembered; the oldest go first.
	maxRemembered = 4096
	// maxHoldersEach bounds the holders remembered per file.
	maxHoldersEach = 16
)

// holderMemory remembers, per file, the holders that served its last
// read, so that the next read (a gateway serves a video as many range
// requests, each its own read) asks them at once instead of probing
// peers and looking the file up in the DHT again.
type holderMemory struct {
	mu sync.Mutex
	m  map[cid.Cid]remembered
}

type remembered struct {
	peers []peer.ID
	at    time.Time
}

// get returns the holders remembered for root, if still fresh.
func (h *holderMemory) get(root cid.Cid) []peer.ID {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.m[root]
	if !ok || time.Since(r.at) > holdersTTL {
		return nil
	}
	return r.peers
}

// put remembers the holders that served root; none forgets it.
func (h *holderMemory) put(root cid.Cid, peers []peer.ID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(peers) == 0 {
		delete(h.m, root)
		return
	}
	if h.m == nil {
		h.m = make(map[cid.Cid]remembered)
	}
	if _, ok := h.m[root]; !ok && len(h.m) >= maxRemembered {
		var oldest cid.Cid
		var at time.Time
		for k, r := range h.m {
			if at.IsZero() || r.at.Before(at) {
				oldest, at = k, r.at
			}
		}
		delete(h.m, oldest)
	}
	h.m[root] = remembered{peers: peers[:min(len(peers), maxHoldersEach)], at: time.Now()}
}
