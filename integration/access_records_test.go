package integration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/exchange"
	"github.com/ddc-project/ddc/internal/frame"
	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/search"
)

// recordBound is how long a holder may go on serving strangers a bucket
// made private, as the README says: the record TTL once the new record
// is in the DHT (holders the owner's node reaches get it at once), with
// room for the lookups of a loaded machine.
const recordBound = node.DefaultRecordTTL + 30*time.Second

// strangerReads reports whether a peer with no grant reads the file c
// from holder d: its descriptor over the exchange, and a search of
// bucket b. A holder answering busy (it is looking the record up) has
// not answered yet: ok is false.
func strangerReads(ctx context.Context, t *testing.T, h host.Host, d *daemon, b bucket.ID, c string) (reads, ok bool) {
	t.Helper()
	p, _, err := dialOn(ctx, h, d)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := exchange.Dial(ctx, h, p, "default", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	_, gerr := sess.Get(ctx, mustCID(t, c))
	q, _ := search.Parse([]string{"kind=notes"})
	page, serr := search.Ask(ctx, h, "default", p, search.NewRequest(b[:], nil, q, nil, 10))
	switch {
	case errors.Is(gerr, exchange.ErrBusy), serr != nil && strings.Contains(serr.Error(), "try again"):
		return false, false
	case gerr == nil && serr == nil && len(page.Results) == 1:
		return true, true
	case errors.Is(gerr, exchange.ErrDenied) && errors.As(serr, new(*search.DeniedError)):
		return false, true
	}
	t.Fatalf("a stranger asking %s: get %v, search %d results, %v", d.path, gerr, len(page.Results), serr)
	return false, false
}

// pushRecord hands d the bucket record enc as a node publishing it would.
func pushRecord(ctx context.Context, t *testing.T, h host.Host, d *daemon, enc []byte) {
	t.Helper()
	p, _, err := dialOn(ctx, h, d)
	if err != nil {
		t.Fatal(err)
	}
	str, err := h.NewStream(ctx, p, protocol.ID("/ddc/default/bucket-record/1.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	if err := frame.Write(str, enc); err != nil {
		t.Fatal(err)
	}
	str.CloseWrite()
	str.Read(make([]byte, 1)) // until d has taken it
	str.Close()
}

// TestBucketMadePrivate: three nodes fetch a public bucket's file (with
// -b, without, and through a gateway); once the owner makes the bucket
// private, within the documented bound, each of them refuses a
// stranger's read and search, as does every holder to a stranger's get,
// stat and search through the CLI; a holder restarted still refuses, and
// so does one that was down when the bucket changed. The old public
// record replayed to holders, one of them new, changes nothing.
func TestBucketMadePrivate(t *testing.T) {
	owner := startDaemon(t, newDaemonRepo(t))
	var holders []*daemon
	for range 3 {
		holders = append(holders, startDaemon(t, newDaemonRepo(t), "--bootstrap", owner.tcpAddr()))
	}
	b := strings.TrimSpace(owner.ok(nil, "bucket", "create", "--name", "notes"))
	id, _ := bucket.ParseID(b)
	c := owner.put(randomFile(t, 81, 3<<20), "-b", b, "-t", "kind=notes", "--path", "/notes/today.txt")
	old, err := os.ReadFile(filepath.Join(owner.path, "buckets", b))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range holders {
		waitFor(t, "the bucket on "+h.path, 30*time.Second, func() bool { _, err := h.bucket(b); return err == nil })
	}
	holders[0].ok(nil, "get", "-b", b, "-o", filepath.Join(t.TempDir(), "1"), c)
	holders[1].ok(nil, "get", "-o", filepath.Join(t.TempDir(), "2"), c)
	if a := request(t, "GET", holders[2].gateway()+"/ddc/file/"+c); a.status != 200 {
		t.Fatalf("the file through a gateway while the bucket is public: %d", a.status)
	}
	h, _, ctx := dialDaemon(t, owner)
	for _, d := range append([]*daemon{owner}, holders...) {
		waitFor(t, d.path+" to serve a stranger while the bucket is public", recordBound, func() bool {
			reads, ok := strangerReads(ctx, t, h, d, id, c)
			return ok && reads
		})
	}

	// The third holder is down when the bucket changes.
	late := holders[2]
	late.stop(t)
	owner.ok(nil, "bucket", "set", b, "--private")
	start := time.Now()
	refuses := func(d *daemon) {
		t.Helper()
		waitFor(t, d.path+" to refuse a stranger", recordBound, func() bool {
			reads, ok := strangerReads(ctx, t, h, d, id, c)
			return ok && !reads
		})
	}
	for _, d := range []*daemon{owner, holders[0], holders[1]} {
		refuses(d)
	}
	t.Logf("the reachable holders refused strangers %s after bucket set --private", time.Since(start).Round(time.Millisecond))

	stranger := startDaemon(t, newDaemonRepo(t), "--bootstrap", owner.tcpAddr())
	stranger.denied(t, 6, "not found or not permitted", c)
	if code, _, errs := stranger.run(nil, "stat", c); code != 6 {
		t.Fatalf("a stranger's stat: exit %d, %s; want 6", code, errs)
	}
	out, code, errs := stranger.search(t, "-b", b, "kind=notes")
	if len(out.Results) != 0 || (code == 0 && out.Answered != 0) {
		t.Fatalf("a stranger's search: exit %d (%s), %+v; want nothing from any holder", code, errs, out)
	}

	// Restarted, a holder still refuses; the one that was down refuses
	// once it has looked the record up.
	holders[0].stop(t)
	holders[0] = startDaemon(t, holders[0].repo)
	refuses(holders[0])
	late = startDaemon(t, late.repo, "--bootstrap", owner.tcpAddr())
	start = time.Now()
	refuses(late)
	t.Logf("the holder that was down refused strangers %s after it started", time.Since(start).Round(time.Millisecond))

	// The old public record, replayed to every holder and to a new one
	// before it ever saw the bucket, changes nothing.
	fresh := startDaemon(t, newDaemonRepo(t), "--bootstrap", owner.tcpAddr())
	for _, d := range []*daemon{holders[0], holders[1], late, fresh} {
		pushRecord(ctx, t, h, d, old)
	}
	token := strings.TrimSpace(owner.ok(nil, "bucket", "grant", b, "--to", fresh.state.PeerID))
	fresh.ok(nil, "get", "-b", b, "--token", token, "-o", filepath.Join(t.TempDir(), "4"), c)
	for _, d := range []*daemon{holders[0], holders[1], late, fresh} {
		refuses(d)
	}
	if kept, err := holders[1].bucket(b); err != nil || kept.Access != "private" {
		t.Fatalf("a holder's record after the replay: %+v, %v", kept, err)
	}
}
