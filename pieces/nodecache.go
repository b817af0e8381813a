package pieces

import (
	"container/list"
	"sync"

	"github.com/ipfs/go-cid"
)

// Decoded descriptors are kept across Files: decoding a descriptor of a
// thousand links (and checking it is canonical) costs more than a
// gateway's whole answer to a small range of a file it holds. A
// descriptor is immutable, named by its hash, so the decoded form of its
// bytes is the same for every reader. The cache holds no access: every
// Open and every descent still gets the descriptor's bytes through its
// Getter, which checks who may read them, and only then takes the
// decoded form from here.

// nodeCacheBytes bounds the encoded bytes of the descriptors kept.
const nodeCacheBytes = 32 << 20

var decoded = &nodeCache{byCID: make(map[cid.Cid]*list.Element)}

type nodeCache struct {
	mu    sync.Mutex
	lru   list.List // of *node, most recently used first
	byCID map[cid.Cid]*list.Element
	bytes int
}

func (nc *nodeCache) get(c cid.Cid) *node {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	e := nc.byCID[c]
	if e == nil {
		return nil
	}
	nc.lru.MoveToFront(e)
	return e.Value.(*node)
}

func (nc *nodeCache) add(n *node) {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	if _, ok := nc.byCID[n.cid]; ok || len(n.raw) > nodeCacheBytes/4 {
		return
	}
	nc.byCID[n.cid] = nc.lru.PushFront(n)
	nc.bytes += len(n.raw)
	for nc.bytes > nodeCacheBytes {
		old := nc.lru.Back()
		o := old.Value.(*node)
		nc.lru.Remove(old)
		delete(nc.byCID, o.cid)
		nc.bytes -= len(o.raw)
	}
}
