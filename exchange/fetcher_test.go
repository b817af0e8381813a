package exchange_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/ddc-project/ddc/exchange"
	"github.com/ddc-project/ddc/pieces"
)

// fileStore builds a random file of size bytes into a pieceStore.
func fileStore(t testing.TB, size int) (*pieceStore, cid.Cid, []byte) {
	t.Helper()
	s := &pieceStore{m: make(map[cid.Cid][]byte), bad: make(map[cid.Cid]bool)}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i/251)
	}
	opt := pieces.DefaultBuildOptions()
	opt.ChunkSize = 64 << 10
	res, err := pieces.Build(context.Background(), bytes.NewReader(data), putter{s}, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s, res.Root, data
}

type putter struct{ s *pieceStore }

func (p putter) PutPiece(c cid.Cid, b []byte) error {
	p.s.m[c] = append([]byte(nil), b...)
	return nil
}

// hook wraps a Getter and calls before on every request.
type hook struct {
	g      pieces.Getter
	before func(c cid.Cid)
}

func (h hook) GetPiece(ctx context.Context, c cid.Cid) ([]byte, error) {
	h.before(c)
	return h.g.GetPiece(ctx, c)
}

// swarm starts n holder hosts serving from the getters and one fetcher
// host connected to all of them.
func swarm(t *testing.T, getters []pieces.Getter, log *slog.Logger) (*exchange.Fetcher, []host.Host) {
	t.Helper()
	f, hosts := newSwarm(t, getters, log)
	t.Cleanup(func() { f.Close() })
	return f, hosts
}

// swarmB is swarm for benchmarks; the caller closes what it returns.
func swarmB(b *testing.B, getters []pieces.Getter) (*exchange.Fetcher, []host.Host) {
	f, hosts := newSwarm(b, getters, nil)
	return f, hosts
}

func newSwarm(t testing.TB, getters []pieces.Getter, log *slog.Logger) (*exchange.Fetcher, []host.Host) {
	t.Helper()
	client := newHostTB(t)
	var hosts []host.Host
	for _, g := range getters {
		h := newHostTB(t)
		srv, err := exchange.NewServer(h, g, exchange.DefaultServerOptions())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		connectB(t, client, h)
		hosts = append(hosts, h)
	}
	f := newFetcher(t, client, exchange.FetcherOptions{Logger: log})
	for _, h := range hosts {
		f.AddHolders(h.ID())
	}
	hosts = append(hosts, client)
	return f, hosts[:len(getters)]
}

// fetchAll reads the file root whole through f, into out's capacity when it
// is enough (a buffer that grows as it fills stalls the reader on copies
// and fresh pages, and with it the fetch: a benchmark passes one made and
// touched before it starts the clock).
func fetchAll(t testing.TB, f *exchange.Fetcher, root cid.Cid, out []byte) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	file, err := pieces.Open(ctx, f, root)
	if err != nil {
		return nil, err
	}
	file.ReadAhead = 32 // node.DefaultReadAhead
	buf := bytes.NewBuffer(out[:0])
	_, err = file.WriteTo(buf)
	return buf.Bytes(), err
}

func TestFetchFromEveryHolder(t *testing.T) {
	store, root, data := fileStore(t, 16<<20) // 256 chunks of 64 KiB
	f, hosts := swarm(t, []pieces.Getter{store, store, store, store}, nil)
	got, err := fetchAll(t, f, root, nil)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("fetch: %v (%d bytes)", err, len(got))
	}
	stats := f.Stats()
	for _, h := range hosts {
		if st := stats[h.ID()]; st.Pieces < 256/4/3 {
			t.Errorf("holder %s served %d of 257 pieces; want a substantial share", h.ID(), st.Pieces)
		}
	}
	t.Logf("shares: %v", stats)
}

func TestFetchSurvivesAHolderDying(t *testing.T) {
	store, root, data := fileStore(t, 8<<20)
	var served atomic.Int32
	var dying host.Host
	var once sync.Once
	killer := hook{g: store, before: func(cid.Cid) {
		if served.Add(1) == 20 {
			once.Do(func() { go dying.Close() }) // dies mid-transfer
		}
	}}
	f, hosts := swarm(t, []pieces.Getter{killer, store, store}, nil)
	dying = hosts[0]
	got, err := fetchAll(t, f, root, nil)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("fetch with a dying holder: %v", err)
	}
	if served.Load() < 20 {
		t.Fatalf("the dying holder served only %d requests: it never died mid-transfer", served.Load())
	}
}

func TestFetchDropsALyingHolder(t *testing.T) {
	store, root, data := fileStore(t, 8<<20)
	liar := &pieceStore{m: store.m, bad: make(map[cid.Cid]bool)}
	for c := range store.m {
		liar.bad[c] = true
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logs, &mu}, nil))
	f, hosts := swarm(t, []pieces.Getter{liar, store, store}, log)
	got, err := fetchAll(t, f, root, nil)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("fetch with a lying holder: %v", err)
	}
	st := f.Stats()[hosts[0].ID()]
	if st.Banned == nil || !errors.Is(st.Banned, pieces.ErrCorrupt) {
		t.Fatalf("the lying holder is not banned: %+v", st)
	}
	if st.Pieces != 0 {
		t.Fatalf("bytes from the lying holder were used: %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), hosts[0].ID().String()) || !strings.Contains(logs.String(), "bad bytes") {
		t.Fatalf("the log does not name the lying holder:\n%s", logs.String())
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func TestNoHolderIsAClearError(t *testing.T) {
	empty := &pieceStore{m: make(map[cid.Cid][]byte)}
	f, _ := swarm(t, []pieces.Getter{empty, empty}, nil)
	missing := pieces.SHA2_256.Sum(pieces.CodecDagCBOR, []byte("nobody has this"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := f.GetPiece(ctx, missing)
	if !errors.Is(err, pieces.ErrNotFound) || !strings.Contains(err.Error(), missing.String()) || ctx.Err() != nil {
		t.Fatalf("got %v (ctx %v); want a not-found naming %s before the deadline", err, ctx.Err(), missing)
	}
	lone := newFetcher(t, newHost(t), exchange.FetcherOptions{})
	if _, err := lone.GetPiece(ctx, missing); !errors.Is(err, pieces.ErrNotFound) || !strings.Contains(err.Error(), "no holders") {
		t.Fatalf("no holders at all: %v", err)
	}
}

// TestDeadHoldersDoNotStall: holders that never finish a handshake (a
// node that died behind an address that still accepts) cannot hold a
// piece up while a live holder is known: hedging moves on to the next
// holder every hedge interval.
func TestDeadHoldersDoNotStall(t *testing.T) {
	s, root, data := fileStore(t, 256<<10)
	f, _ := swarm(t, []pieces.Getter{s}, nil)
	client := f.Host()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and say nothing
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	silent, err := manet.FromNetAddr(ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		_, pub, _ := crypto.GenerateEd25519Key(nil)
		id, _ := peer.IDFromPublicKey(pub)
		client.Peerstore().AddAddr(id, silent, time.Hour)
		f.AddHolders(id)
	}
	start := time.Now()
	got, err := fetchAll(t, f, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("fetched other bytes")
	}
	t.Logf("read past 4 silent holders in %s", time.Since(start).Round(time.Millisecond))
	// Functional bound: a dial to a silent holder waits for libp2p's
	// handshake timeout (15 s); one at a time, this would take far longer.
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %s: the silent holders held the pieces up", took)
	}
}

// TestFetcherOptionsOutOfRange: a bad window or no cluster is an error,
// not silently replaced; a zero window is the default.
func TestFetcherOptionsOutOfRange(t *testing.T) {
	h := newHost(t)
	for _, opts := range []exchange.FetcherOptions{
		{},
		{Cluster: "default", Window: -1},
		{Cluster: "default", Window: exchange.MaxWindow + 1},
	} {
		if f, err := exchange.NewFetcher(h, opts); err == nil {
			f.Close()
			t.Errorf("NewFetcher with %+v succeeded", opts)
		}
	}
	f, err := exchange.NewFetcher(h, exchange.FetcherOptions{Cluster: "default"})
	if err != nil {
		t.Fatalf("zero window: %v", err)
	}
	f.Close()
}
