package node

import (
	"crypto/sha256"
	"testing"
	"time"
)

// BenchmarkMetricsPerPiece: what the metrics add to a piece fetched and
// served (its counters and latency histogram), beside the floor of the
// work a 1 MiB piece takes anyway: hashing it to verify it.
func BenchmarkMetricsPerPiece(b *testing.B) {
	m := newMetrics()
	chunk := make([]byte, 1<<20)
	b.Run("metrics", func(b *testing.B) {
		for b.Loop() {
			m.fetchedPiece("exchange", len(chunk), time.Millisecond)
			m.servedPiece("exchange", len(chunk))
		}
	})
	b.Run("verify-1MiB", func(b *testing.B) {
		b.SetBytes(int64(len(chunk)))
		for b.Loop() {
			sha256.Sum256(chunk)
		}
	})
}
