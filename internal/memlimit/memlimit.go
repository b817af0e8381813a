// Package memlimit keeps Go's soft memory limit a fixed headroom above
// what a process needs, instead of the garbage collector's default of
// letting the heap grow to twice what is live.
//
// A node's gateway allocates a fresh buffer for every chunk it fetches
// for a client (pooling them is unsafe while the keeper and other reads
// may still hold them): under many requests that garbage would double
// the heap. Its read-ahead is bounded by a budget, so the memory the node
// needs is its own live memory besides those chunks, plus the budget;
// the limit is that plus a slack, recomputed as the live memory changes,
// so it never sits below what is live (where the collector would run
// without end) and never far above it.
package memlimit

import (
	"context"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Headroom sets the limit.
type Headroom struct {
	Budget int64        // bytes of buffers a budget bounds (a gateway's read-ahead)
	InUse  func() int64 // bytes of the Budget taken now; nil: none
	Slack  int64        // bytes above the need and the budget
	Every  time.Duration
}

// samples are the runtime/metrics read, in this order.
var names = []string{
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
}

// Need reports the bytes the process needs now: the heap live at the
// last collection and the runtime's memory besides the heap (stacks,
// metadata), less the bytes inUse of a budget.
func Need(inUse int64) int64 {
	s := make([]metrics.Sample, len(names))
	for i, n := range names {
		s[i].Name = n
	}
	metrics.Read(s)
	v := func(i int) int64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(s[i].Value.Uint64())
	}
	heap := v(2) + v(3) + v(4) + v(5)
	return max(v(0)+v(1)-heap-inUse, 0)
}

// Set sets the limit to what the process needs now plus h's budget and
// slack, and returns it.
func (h Headroom) Set() int64 {
	var used int64
	if h.InUse != nil {
		used = h.InUse()
	}
	lim := Need(used) + h.Budget + h.Slack
	debug.SetMemoryLimit(lim)
	return lim
}

// Run sets the limit now and again every h.Every until ctx ends, then
// lifts it.
func (h Headroom) Run(ctx context.Context) {
	h.Set()
	t := time.NewTicker(h.Every)
	defer t.Stop()
	defer debug.SetMemoryLimit(math.MaxInt64)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.Set()
		}
	}
}
