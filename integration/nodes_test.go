package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/dht"
	"github.com/ddc-project/ddc/exchange"
	"github.com/ddc-project/ddc/internal/p2ptest"
	"github.com/ddc-project/ddc/node"
	noderepo "github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
)

// startNode starts an in-process node on a new repo, on loopback, joined
// through boot.
func startNode(t testing.TB, log *slog.Logger, boot ...*node.Node) *node.Node {
	t.Helper()
	var addrs []string
	for _, b := range boot {
		addrs = append(addrs, b.Addrs()[0].String())
	}
	cfg := p2ptest.NodeConfig(addrs...)
	p := filepath.Join(t.TempDir(), "repo")
	if _, err := noderepo.Init(p, cfg); err != nil {
		t.Fatal(err)
	}
	r, err := noderepo.Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n, err := node.Start(r, node.Options{Logger: log, FindTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// content is n seeded pseudo-random bytes, read again as often as needed.
func content(seed uint64, n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8(seedBytes(seed)), n)
}

func sum(r io.Reader) [32]byte {
	h := sha256.New()
	io.Copy(h, r)
	return [32]byte(h.Sum(nil))
}

// holdAll puts the same file on every node and waits until each has
// announced it.
func holdAll(t *testing.T, seed uint64, size int64, holders ...*node.Node) cid.Cid {
	t.Helper()
	var root cid.Cid
	for _, h := range holders {
		res, err := h.Put(context.Background(), content(seed, size), pieces.DefaultBuildOptions())
		if err != nil {
			t.Fatal(err)
		}
		root = res.Root
	}
	waitFor(t, "holders to announce", 60*time.Second, func() bool {
		for _, h := range holders {
			if _, pending := h.Announcing(); pending > 0 {
				return false
			}
		}
		return true
	})
	return root
}

// hookWriter calls at after each write once the bytes written pass
// after, until at returns true.
type hookWriter struct {
	w     io.Writer
	n     int64
	after int64
	at    func() bool
	done  bool
}

func (h *hookWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.n += int64(n)
	if h.at != nil && !h.done && h.n >= h.after {
		h.done = h.at()
	}
	return n, err
}

// fetch reads root whole on n and returns the digest and the reader's
// holder statistics.
func fetch(t *testing.T, n *node.Node, root cid.Cid, after int64, at func(*node.Reader) bool) ([32]byte, map[peer.ID]exchange.HolderStats) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := n.Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	hw := &hookWriter{w: h, after: after}
	if at != nil {
		hw.at = func() bool { return at(r) }
	}
	if _, err := r.WriteTo(hw); err != nil {
		t.Fatalf("fetch %s: %v", root, err)
	}
	stats := r.Stats()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil)), stats
}

// TestParallelFetch: a 256 MiB file held by four nodes is fetched by a
// fifth, and every holder serves a substantial share of its pieces.
func TestParallelFetch(t *testing.T) {
	const size = 256 << 20
	first := startNode(t, nil)
	holders := []*node.Node{first, startNode(t, nil, first), startNode(t, nil, first), startNode(t, nil, first)}
	root := holdAll(t, 41, size, holders...)
	getter := startNode(t, nil, first)
	// A get no longer waits for its node to join the DHT; this test is
	// about how a download spreads over holders it knows, so let the
	// getter know all four first (they are connected once in its table).
	waitFor(t, "the getter's routing table to hold the four holders", 30*time.Second, func() bool {
		return getter.DHTStatus()[0].Peers >= len(holders)
	})

	got, stats := fetch(t, getter, root, 0, nil)
	if got != sum(content(41, size)) {
		t.Fatal("fetched bytes differ")
	}
	total := 0
	for _, st := range stats {
		total += st.Pieces
	}
	for i, h := range holders {
		st := stats[h.ID()]
		t.Logf("holder %d served %d of %d pieces", i+1, st.Pieces, total)
		if st.Pieces < total/12 { // a third of a fair share
			t.Errorf("holder %d served %d of %d pieces", i+1, st.Pieces, total)
		}
	}
	// The getter now holds the file too, and says so.
	waitFor(t, "the getter to announce the file", 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for ai := range first.Providers(ctx, root) {
			if ai.ID == getter.ID() {
				return true
			}
		}
		return false
	})
}

// TestFetchHolderKilled: a holder that stops mid-transfer is dropped and
// the file completes from the others.
func TestFetchHolderKilled(t *testing.T) {
	const size = 64 << 20
	first := startNode(t, nil)
	victim := startNode(t, nil, first)
	holders := []*node.Node{first, victim, startNode(t, nil, first)}
	root := holdAll(t, 42, size, holders...)
	getter := startNode(t, nil, first)

	served := 0
	got, _ := fetch(t, getter, root, size/8, func(r *node.Reader) bool {
		if served = r.Stats()[victim.ID()].Pieces; served < 2 {
			return false
		}
		victim.Close()
		return true
	})
	if got != sum(content(42, size)) {
		t.Fatal("fetched bytes differ")
	}
	if served < 2 {
		t.Fatalf("the victim served %d pieces, and was never stopped mid-transfer", served)
	}
	t.Logf("victim served %d pieces before it stopped", served)
}

// TestFetchLyingHolder: a holder that serves corrupted bytes is named in
// the log and dropped; the file still arrives intact from the others.
func TestFetchLyingHolder(t *testing.T) {
	const size = 32 << 20
	first := startNode(t, nil)
	honest := []*node.Node{first, startNode(t, nil, first)}
	root := holdAll(t, 43, size, honest...)

	liar := startLiar(t, first, 43, size)
	var logs syncBuffer
	getter := startNode(t, slog.New(slog.NewTextHandler(&logs, nil)), first)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := getter.Connect(ctx, p2ptest.Info(liar)); err != nil {
		t.Fatal(err)
	}

	got, stats := fetch(t, getter, root, 0, nil)
	if got != sum(content(43, size)) {
		t.Fatal("fetched bytes differ")
	}
	if stats[liar.ID()].Banned == nil {
		t.Fatalf("the liar was not dropped: %+v", stats[liar.ID()])
	}
	if !strings.Contains(logs.String(), liar.ID().String()) {
		t.Fatalf("the log does not name the liar %s:\n%s", liar.ID(), logs.String())
	}
}

// TestCorruptLocalPieceReplaced: a piece that rots in a node's store is
// fetched again when the file is read, and the good copy replaces the bad
// one, so the node serves the file whole after its source is gone.
func TestCorruptLocalPieceReplaced(t *testing.T) {
	const size = 8 << 20
	source := startNode(t, nil)
	var logs syncBuffer
	n := startNode(t, slog.New(slog.NewTextHandler(&logs, nil)), source)
	root := holdAll(t, 44, size, source)
	if got, _ := fetch(t, n, root, 0, nil); got != sum(content(44, size)) {
		t.Fatal("fetched bytes differ")
	}

	blocks, err := filepath.Glob(filepath.Join(n.Repo().Path, "store", "blocks", "*"))
	if err != nil || len(blocks) == 0 {
		t.Fatalf("no block files in %s: %v", n.Repo().Path, err)
	}
	flipByte(t, blocks[0], size/2)
	if bad := badPieces(t, n); len(bad) != 1 {
		t.Fatalf("%d corrupt pieces after one flipped byte, want 1", len(bad))
	}

	if got, _ := fetch(t, n, root, 0, nil); got != sum(content(44, size)) {
		t.Fatal("bytes read over a corrupt local piece differ")
	}
	if !strings.Contains(logs.String(), "corrupt") {
		t.Fatalf("the log does not report the corrupt piece:\n%s", logs.String())
	}
	if bad := badPieces(t, n); len(bad) != 0 {
		t.Fatalf("still corrupt after the read: %v", bad)
	}
	source.Close()
	if got, _ := fetch(t, n, root, 0, nil); got != sum(content(44, size)) {
		t.Fatal("bytes read from the repaired store differ")
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func badPieces(t *testing.T, n *node.Node) []cid.Cid {
	t.Helper()
	var bad []cid.Cid
	if _, err := n.Repo().Store.VerifyAll(context.Background(), func(c cid.Cid, _ error) { bad = append(bad, c) }); err != nil {
		t.Fatal(err)
	}
	return bad
}

// startLiar is a peer that holds the file, announces it, and serves every
// piece with one byte flipped.
func startLiar(t *testing.T, boot *node.Node, seed uint64, size int64) host.Host {
	t.Helper()
	h := p2ptest.NewHost(t)
	ps := memPieces{}
	if _, err := pieces.Build(context.Background(), content(seed, size), ps, pieces.DefaultBuildOptions()); err != nil {
		t.Fatal(err)
	}
	srv, err := exchange.NewServer(h, flipper{ps}, exchange.DefaultServerOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cids := make([]cid.Cid, 0, len(ps))
	for k := range ps {
		c, _ := cid.Cast([]byte(k))
		cids = append(cids, c)
	}
	announceFrom(t, h, boot, cids...)
	return h
}

// announceFrom joins h to boot's DHT, as a server, and announces cids
// from it.
func announceFrom(t *testing.T, h host.Host, boot *node.Node, cids ...cid.Cid) {
	t.Helper()
	do := dht.DefaultOptions()
	do.Mode = dht.ModeServer
	do.Bootstrap = []peer.AddrInfo{{ID: boot.ID(), Addrs: boot.Host().Addrs()}}
	d, err := dht.New(h, do)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitRouting(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := d.Provide(ctx, cids); err != nil {
		t.Fatal(err)
	}
}

type memPieces map[string][]byte

func (m memPieces) PutPiece(c cid.Cid, data []byte) error {
	m[c.KeyString()] = bytes.Clone(data)
	return nil
}

func (m memPieces) GetPiece(_ context.Context, c cid.Cid) ([]byte, error) {
	if d, ok := m[c.KeyString()]; ok {
		return d, nil
	}
	return nil, &pieces.NotFoundError{CID: c}
}

// flipper serves its pieces with the middle byte of each data piece flipped.
type flipper struct{ memPieces }

func (f flipper) GetPiece(ctx context.Context, c cid.Cid) ([]byte, error) {
	d, err := f.memPieces.GetPiece(ctx, c)
	if err != nil || c.Type() != cid.Raw {
		return d, err
	}
	d = bytes.Clone(d)
	d[len(d)/2] ^= 0xff
	return d, nil
}
