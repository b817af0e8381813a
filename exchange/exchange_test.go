package exchange_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/ddc-project/ddc/exchange"
	"github.com/ddc-project/ddc/internal/p2ptest"
	"github.com/ddc-project/ddc/pieces"
)

func newHost(t *testing.T) host.Host { return p2ptest.NewHost(t) }

func newHostTB(t testing.TB) host.Host { return p2ptest.NewHost(t) }

// newFetcher is a Fetcher on h in the default cluster unless opts names one.
func newFetcher(t testing.TB, h host.Host, opts exchange.FetcherOptions) *exchange.Fetcher {
	t.Helper()
	if opts.Cluster == "" {
		opts.Cluster = "default"
	}
	f, err := exchange.NewFetcher(h, opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func connect(t *testing.T, a, b host.Host) { p2ptest.Connect(t, a, b) }

func connectB(t testing.TB, a, b host.Host) { p2ptest.Connect(t, a, b) }

// pieceStore is a Getter over a map; bad, when set, serves wrong bytes.
type pieceStore struct {
	mu  sync.Mutex
	m   map[cid.Cid][]byte
	bad map[cid.Cid]bool
}

func (s *pieceStore) GetPiece(_ context.Context, c cid.Cid) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[c]
	if !ok {
		return nil, &pieces.NotFoundError{CID: c}
	}
	if s.bad[c] {
		b = append([]byte(nil), b...)
		b[0] ^= 1
	}
	return b, nil
}

func newPieces(n, size int) (*pieceStore, []cid.Cid) {
	s := &pieceStore{m: make(map[cid.Cid][]byte), bad: make(map[cid.Cid]bool)}
	var cids []cid.Cid
	r := rand.New(rand.NewPCG(uint64(n), uint64(size)))
	for range n {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		c := pieces.SHA2_256.Sum(pieces.CodecRaw, b)
		s.m[c] = b
		cids = append(cids, c)
	}
	return s, cids
}

// pair is a server host with pieces and a connected client host.
func pair(t *testing.T, store pieces.Getter, opts exchange.ServerOptions) (server *exchange.Server, srv, cli host.Host) {
	t.Helper()
	srv, cli = newHost(t), newHost(t)
	server, err := exchange.NewServer(srv, store, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	connect(t, cli, srv)
	return server, srv, cli
}

func dial(t *testing.T, cli host.Host, p peer.ID, window int) *exchange.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := exchange.Dial(ctx, cli, p, "default", window)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPipelinedGets(t *testing.T) {
	store, cids := newPieces(64, 100_000)
	_, srv, cli := pair(t, store, exchange.DefaultServerOptions())
	s := dial(t, cli, srv.ID(), 8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(cids))
	for _, c := range cids {
		wg.Go(func() {
			b, err := s.Get(ctx, c)
			if err == nil && !bytes.Equal(b, store.m[c]) {
				err = fmt.Errorf("%s: other bytes", c)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A range of a piece, and statuses for what the server lacks.
	part, err := s.GetRangeUnverified(ctx, cids[0], 10, 20)
	if err != nil || !bytes.Equal(part, store.m[cids[0]][10:30]) {
		t.Fatalf("range: %v", err)
	}
	if _, err := s.GetRangeUnverified(ctx, cids[0], 99_990, 20); !errors.Is(err, exchange.ErrBadRequest) {
		t.Fatalf("range past the end: %v", err)
	}
	missing := pieces.SHA2_256.Sum(pieces.CodecRaw, []byte("absent"))
	_, err = s.Get(ctx, missing)
	var pe *exchange.PeerError
	if !errors.Is(err, pieces.ErrNotFound) || !errors.As(err, &pe) || pe.Peer != srv.ID() {
		t.Fatalf("missing piece: %v", err)
	}
	if _, err := s.Get(ctx, cids[1]); err != nil {
		t.Fatalf("the session broke after a not-found: %v", err)
	}
}

func TestLyingHolderIsNamed(t *testing.T) {
	store, cids := newPieces(4, 5000)
	store.bad[cids[2]] = true
	_, srv, cli := pair(t, store, exchange.DefaultServerOptions())
	s := dial(t, cli, srv.ID(), 0)
	ctx := context.Background()
	_, err := s.Get(ctx, cids[2])
	var pe *exchange.PeerError
	if !errors.Is(err, pieces.ErrCorrupt) || !errors.As(err, &pe) || pe.Peer != srv.ID() {
		t.Fatalf("wrong bytes: %v", err)
	}
	for _, c := range []cid.Cid{cids[0], cids[3]} {
		if _, err := s.Get(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
}

// gatedStore holds every GetPiece until open is closed, and says when
// one has started.
type gatedStore struct {
	*pieceStore
	entered chan struct{}
	open    chan struct{}
}

func (g gatedStore) GetPiece(ctx context.Context, c cid.Cid) ([]byte, error) {
	select {
	case g.entered <- struct{}{}:
	default: // only the first is waited for
	}
	<-g.open
	return g.pieceStore.GetPiece(ctx, c)
}

// TestBusyAndStreamLimits: with one concurrent read, a request that comes
// while the read slot is taken is answered busy (ErrBusy), and served once
// the slot is free; a stream past the per-peer limit is refused while the
// ones admitted keep working, and its slot comes back when one closes.
func TestBusyAndStreamLimits(t *testing.T) {
	store, cids := newPieces(2, 10)
	gate := gatedStore{store, make(chan struct{}, 1), make(chan struct{})}
	opts := exchange.DefaultServerOptions()
	opts.StreamsPerPeer, opts.ConcurrentReads = 2, 1
	_, srv, cli := pair(t, gate, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, b := dial(t, cli, srv.ID(), 0), dial(t, cli, srv.ID(), 0)

	first := make(chan error, 1)
	go func() {
		_, err := a.Get(ctx, cids[0])
		first <- err
	}()
	<-gate.entered // a's read holds the only slot
	if _, err := b.Get(ctx, cids[1]); !errors.Is(err, exchange.ErrBusy) {
		t.Fatalf("a request while the read slot is taken: %v, want ErrBusy", err)
	}
	close(gate.open)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, cids[1]); err != nil {
		t.Fatalf("the same request once the slot is free: %v", err)
	}

	third := dial(t, cli, srv.ID(), 0)
	if _, err := third.Get(ctx, cids[0]); err == nil || errors.Is(err, exchange.ErrBusy) {
		t.Fatalf("a third stream over a limit of two: %v, want it refused", err)
	}
	if _, err := a.Get(ctx, cids[0]); err != nil {
		t.Fatalf("an admitted stream after a refused one: %v", err)
	}
	a.Close()
	// The slot frees once the server sees the reset.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := dial(t, cli, srv.ID(), 0)
		if _, err := s.Get(ctx, cids[0]); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stream slot never came back")
		}
		time.Sleep(10 * time.Millisecond) // poll: the server frees the slot asynchronously
	}
}

func TestHostileStreamsLeaveServerServing(t *testing.T) {
	store, cids := newPieces(2, 1000)
	opts := exchange.DefaultServerOptions()
	opts.IdleTimeout = 300 * time.Millisecond
	_, srv, cli := pair(t, store, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Requests carry a bucket, a token and a proof after the range.
	hostileStreams(t, ctx, cli, srv, exchange.ProtocolID("default"), cids, []any{[]byte{}, []byte{}, []byte{}, false})
}

func hostileStreams(t *testing.T, ctx context.Context, cli, srv host.Host, proto protocol.ID, cids []cid.Cid, more []any) {
	raw := func(payload []byte, closeWrite bool) []byte {
		str, err := cli.NewStream(ctx, srv.ID(), proto)
		if err != nil {
			t.Fatal(err)
		}
		defer str.Close()
		str.Write(payload)
		if closeWrite {
			str.CloseWrite()
		}
		str.SetReadDeadline(time.Now().Add(5 * time.Second))
		var out bytes.Buffer
		out.ReadFrom(bufio.NewReader(str))
		return out.Bytes()
	}
	junk := make([]byte, 4096)
	rand.NewChaCha8([32]byte{3}).Read(junk)
	cases := map[string][]byte{
		"random bytes":     junk,
		"oversized frame":  {0xff, 0xff, 0xff, 0xff, 0x0f},
		"truncated frame":  {0x40, 0x85, 0x01},
		"zero-length":      {0x00},
		"not an array":     {0x02, 0xa0, 0x00},
		"unknown type":     frame(t, append([]any{uint64(9), uint64(0), cids[0].Bytes(), uint64(0), uint64(0)}, more...)),
		"garbage CID":      frame(t, append([]any{uint64(1), uint64(0), []byte("nope"), uint64(0), uint64(0)}, more...)),
		"silent then idle": nil,
	}
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			got := raw(payload, name != "silent then idle")
			switch name {
			case "unknown type", "garbage CID":
				// Answered with a status, not a reset: [id 0, bad request 4, size 0, no bucket].
				if !bytes.Equal(got, []byte{0x05, 0x84, 0x00, 0x04, 0x00, 0xf6}) {
					t.Fatalf("response %x, want bad request", got)
				}
			default:
				if len(got) != 0 {
					t.Fatalf("response %x to a broken stream", got)
				}
			}
		})
	}
	// The server still serves a well-behaved client.
	s := dial(t, cli, srv.ID(), 0)
	for _, c := range cids {
		if _, err := s.Get(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
}

func frame(t *testing.T, v []any) []byte {
	t.Helper()
	b, err := exchange.EncodeFrameForTest(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSessionEndsWhenHolderCloses(t *testing.T) {
	store, cids := newPieces(1, 10)
	server, srv, cli := pair(t, store, exchange.DefaultServerOptions())
	s := dial(t, cli, srv.ID(), 0)
	if _, err := s.Get(context.Background(), cids[0]); err != nil {
		t.Fatal(err)
	}
	server.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Get(ctx, cids[0]); err == nil || ctx.Err() != nil {
		t.Fatalf("get from a closed server: %v (ctx %v)", err, ctx.Err())
	}
	if !errors.Is(s.Err(), exchange.ErrGone) {
		t.Fatalf("session ended by the holder: %v, want %v", s.Err(), exchange.ErrGone)
	}
}
