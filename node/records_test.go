package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/dht"
	"github.com/ddc-project/ddc/exchange"
	"github.com/ddc-project/ddc/internal/p2ptest"
	"github.com/ddc-project/ddc/node/repo"
)

// recordVersions are versions 1 (public), 2 (private) and 3 (public
// again) of one bucket's record.
func recordVersions(t *testing.T) (bucket.PrivateKey, [3]bucket.Record) {
	t.Helper()
	owner, err := bucket.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	var vs [3]bucket.Record
	vs[0], err = bucket.NewRecord(owner, "default", false, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 3; i++ {
		vs[i] = vs[i-1]
		vs[i].Seq++
		vs[i].Private = !vs[i-1].Private
		if err := vs[i].Sign(owner); err != nil {
			t.Fatal(err)
		}
	}
	return owner, vs
}

// testRecords is a records cache over a new repo, whose DHT lookup is
// lookup.
func testRecords(t *testing.T, ctx context.Context, ttl time.Duration, lookup func(context.Context, bucket.ID) (bucket.Record, error)) *records {
	t.Helper()
	p := filepath.Join(t.TempDir(), "repo")
	if _, err := repo.Init(p, p2ptest.NodeConfig()); err != nil {
		t.Fatal(err)
	}
	return &records{ctx: ctx, repo: p, ttl: ttl, lookup: lookup, log: slog.New(slog.DiscardHandler)}
}

// TestRecordsCurrent: a public record counts only once the DHT confirmed
// it, for the TTL; a newer version found replaces it on disk too; an
// older one offered changes nothing; a lookup that fails or runs late
// means the holder cannot tell.
func TestRecordsCurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, vs := recordVersions(t)
		id := vs[0].Bucket
		var lookups atomic.Int32
		var answer atomic.Pointer[bucket.Record]
		var failWith atomic.Pointer[error]
		release := make(chan struct{}, 8)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		rs := testRecords(t, ctx, time.Minute, func(ctx context.Context, _ bucket.ID) (bucket.Record, error) {
			lookups.Add(1)
			<-release
			if e := failWith.Load(); e != nil {
				return bucket.Record{}, *e
			}
			if r := answer.Load(); r != nil {
				return *r, nil
			}
			return bucket.Record{}, fmt.Errorf("bucket %s: %w", id, dht.ErrNoRecord)
		})
		if err := rs.offer(vs[0]); err != nil {
			t.Fatal(err)
		}

		// Kept but never confirmed: a lookup runs; one that finds
		// nothing newer confirms it.
		release <- struct{}{}
		if r, err := rs.current(ctx, id); err != nil || r.Private || r.Seq != 1 {
			t.Fatalf("first use: %+v, %v; want version 1, public", r, err)
		}
		if _, err := rs.current(ctx, id); err != nil || lookups.Load() != 1 {
			t.Fatalf("within the TTL: %v, %d lookups; want no second lookup", err, lookups.Load())
		}

		// Past the TTL, the DHT has version 2 (private): it wins, and
		// the repo keeps it.
		time.Sleep(time.Minute + time.Second)
		answer.Store(&vs[1])
		release <- struct{}{}
		if r, err := rs.current(ctx, id); err != nil || !r.Private || r.Seq != 2 {
			t.Fatalf("after the TTL: %+v, %v; want version 2, private", r, err)
		}
		if kept, err := mustBuckets(t, rs.repo).Get(id); err != nil || kept.Seq != 2 {
			t.Fatalf("the repo keeps %+v, %v; want version 2", kept, err)
		}

		// An older version replayed changes nothing.
		if err := rs.offer(vs[0]); err != nil {
			t.Fatal(err)
		}
		if r, _ := rs.get(id); r.Seq != 2 {
			t.Fatalf("after a replay of version 1: version %d", r.Seq)
		}

		// A private record past the TTL is answered at once (it asks for
		// a grant whatever a newer one says) while a lookup runs behind.
		time.Sleep(time.Minute + time.Second)
		answer.Store(&vs[2])
		before := lookups.Load()
		if r, err := rs.current(ctx, id); err != nil || !r.Private {
			t.Fatalf("a stale private record: %+v, %v", r, err)
		}
		synctest.Wait()
		if lookups.Load() != before+1 {
			t.Fatal("no lookup behind a stale private record")
		}
		release <- struct{}{}
		synctest.Wait()
		if r, err := rs.current(ctx, id); err != nil || r.Private || r.Seq != 3 {
			t.Fatalf("once looked up: %+v, %v; want version 3, public", r, err)
		}

		// Public past the TTL and the lookup fails: cannot tell.
		time.Sleep(time.Minute + time.Second)
		fail := errors.New("no DHT peers")
		failWith.Store(&fail)
		release <- struct{}{}
		if _, err := rs.current(ctx, id); !errors.Is(err, errCannotTell) {
			t.Fatalf("a failed lookup of a stale public record: %v, want cannot tell", err)
		}
		// Or it is still running when the request must be answered: busy.
		short, stop := context.WithTimeout(ctx, time.Second)
		defer stop()
		if _, err := rs.current(short, id); !errors.Is(err, exchange.ErrBusy) || !errors.Is(err, errCannotTell) {
			t.Fatalf("a lookup still running: %v, want busy", err)
		}
		release <- struct{}{}
		synctest.Wait()

		// A bucket the node has no record of at all.
		_, other := recordVersions(t)
		failWith.Store(nil)
		answer.Store(nil)
		release <- struct{}{}
		if _, err := rs.current(ctx, other[0].Bucket); !errors.Is(err, errCannotTell) {
			t.Fatalf("a bucket no one has a record of: %v, want cannot tell", err)
		}
	})
}

// TestRecordsKeptCurrent: records in use are looked up again before they
// expire, so requests never wait on a lookup; records unused are not.
func TestRecordsKeptCurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, vs := recordVersions(t)
		var lookups atomic.Int32
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		rs := testRecords(t, ctx, time.Minute, func(context.Context, bucket.ID) (bucket.Record, error) {
			lookups.Add(1)
			return bucket.Record{}, dht.ErrNoRecord
		})
		go rs.keepCurrent(ctx)
		rs.offer(vs[0])
		for range 10 { // ten minutes of use, a request every 15 s
			for range 4 {
				if _, err := rs.current(ctx, vs[0].Bucket); err != nil {
					t.Fatal(err)
				}
				time.Sleep(15 * time.Second)
			}
		}
		used := lookups.Load()
		if used < 10 || used > 40 {
			t.Fatalf("%d lookups in ten minutes of use, want about one every TTL/2", used)
		}
		time.Sleep(10 * time.Minute) // unused: no lookups
		synctest.Wait()
		if lookups.Load() > used+2 {
			t.Fatalf("%d lookups while unused", lookups.Load()-used)
		}
		cancel()
		rs.wg.Wait()
	})
}

func mustBuckets(t *testing.T, path string) repo.BucketRecords {
	t.Helper()
	bs, err := repo.Buckets(path)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}
