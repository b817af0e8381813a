package memlimit

import (
	"context"
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func current() int64 { return debug.SetMemoryLimit(-1) }

func TestNeedCountsLiveHeapLessTheBudgetInUse(t *testing.T) {
	runtime.GC()
	before := Need(0)
	live := make([]byte, 32<<20)
	for i := range live {
		live[i] = byte(i)
	}
	runtime.GC()
	with := Need(0)
	if with-before < 30<<20 {
		t.Errorf("32 MiB live: need grew %d bytes (from %d to %d)", with-before, before, with)
	}
	if less := Need(32 << 20); with-less < 30<<20 || less > with {
		t.Errorf("32 MiB of it in use by the budget: need %d, %d without", less, with)
	}
	runtime.KeepAlive(live)
}

func TestSetAndRun(t *testing.T) {
	defer debug.SetMemoryLimit(current())
	h := Headroom{Budget: 64 << 20, InUse: func() int64 { return 0 }, Slack: 16 << 20, Every: time.Millisecond}
	lim := h.Set()
	if got := current(); got != lim {
		t.Fatalf("Set returned %d, the limit is %d", lim, got)
	}
	if need := Need(0); lim < 80<<20 || lim > need+80<<20+8<<20 {
		t.Errorf("limit %d: want the need (%d) plus 80 MiB", lim, need)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for current() == math.MaxInt64 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if current() == math.MaxInt64 {
		t.Fatal("Run set no limit within 5 s")
	}
	cancel()
	<-done
	if got := current(); got != math.MaxInt64 {
		t.Errorf("after Run: limit %d, want none", got)
	}
}
