package dht_test

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkFiftyNodes builds a 50-node loopback network, announces 1,025
// CIDs (a 1 GiB file) from one node, then looks each of 200 up from
// another. It reports the announce time and the median lookup.
func BenchmarkFiftyNodes(b *testing.B) {
	hosts, dhts := network(b, 50)
	cids := someCIDs(1025)
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		start := time.Now()
		if err := dhts[10].Provide(ctx, cids); err != nil {
			b.Fatal(err)
		}
		announce := time.Since(start)
		var lookups []time.Duration
		for _, c := range cids[:200] {
			t0 := time.Now()
			found := false
			for p := range dhts[40].FindProviders(ctx, c, 1) {
				found = found || p.ID == hosts[10].ID()
			}
			if !found {
				b.Fatalf("provider of %s not found", c)
			}
			lookups = append(lookups, time.Since(t0))
		}
		cancel()
		slices.Sort(lookups)
		b.ReportMetric(announce.Seconds(), "s-announce-1025")
		b.ReportMetric(float64(lookups[len(lookups)/2])/1e6, "ms-lookup-median")
	}
}
