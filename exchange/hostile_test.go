package exchange_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/ddc-project/ddc/exchange"
	"github.com/ddc-project/ddc/pieces"
)

// fakeHolder serves the exchange protocol on a new host by answering each
// request with answer, which writes whatever it likes to the stream.
func fakeHolder(t *testing.T, answer func(str network.Stream, id uint64, c []byte)) host.Host {
	t.Helper()
	h := newHost(t)
	h.SetStreamHandler(exchange.ProtocolID("default"), func(str network.Stream) {
		defer str.Reset()
		r := bufio.NewReader(str)
		for {
			id, c, err := exchange.ReadRequestForTest(r)
			if err != nil {
				return
			}
			answer(str, id, c)
		}
	})
	return h
}

// stallAfter answers OK for a 1 MiB piece, sends n bytes and then nothing
// until the stream goes.
func stallAfter(t *testing.T, n int) func(network.Stream, uint64, []byte) {
	return func(str network.Stream, id uint64, _ []byte) {
		str.Write(frame(t, []any{id, uint64(exchange.StatusOK), uint64(1 << 20), nil}))
		str.Write(make([]byte, n))
		str.SetReadDeadline(time.Now().Add(time.Minute))
		str.Read(make([]byte, 1)) // until reset
	}
}

// TestStalledHolderReleasesTheCaller: a holder that sends a header and ten
// bytes of a 1 MiB piece, then nothing, cannot hold a request past its
// context (the caller is back within 100 ms of it, its buffer no longer
// written), and without a context deadline the session ends as stalled
// within the body's deadline.
func TestStalledHolderReleasesTheCaller(t *testing.T) {
	stalled := fakeHolder(t, stallAfter(t, 10))
	cli := newHost(t)
	connect(t, cli, stalled)
	c, _ := pieces.ParseCID("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")

	s := dial(t, cli, stalled.ID(), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.GetInto(ctx, c, make([]byte, 1<<20))
	late := time.Since(start) - 200*time.Millisecond
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("get from a stalled holder: %v", err)
	}
	if late > 100*time.Millisecond {
		t.Fatalf("the get returned %s after its context ended", late)
	}

	s = dial(t, cli, stalled.ID(), 0)
	start = time.Now()
	_, err = s.Get(context.Background(), c)
	if !errors.Is(err, exchange.ErrStalled) {
		t.Fatalf("get without a deadline from a stalled holder: %v", err)
	}
	if took, limit := time.Since(start), exchange.BodyTimeoutForTest(1<<20)+2*time.Second; took > limit {
		t.Fatalf("the stall was seen after %s (deadline %s)", took, limit)
	}
}

// TestFetchRoutesAroundAStalledHolder: a file fetched from an honest holder
// and one that stalls on every piece completes, with the stalled holder
// dropped and its pieces served by the other.
func TestFetchRoutesAroundAStalledHolder(t *testing.T) {
	s, root, data := fileStore(t, 8<<20)
	f, hosts := swarm(t, []pieces.Getter{s}, nil)
	stalled := fakeHolder(t, stallAfter(t, 10))
	connect(t, f.Host(), stalled)
	f.AddHolders(stalled.ID())
	got, err := fetchAll(t, f, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("fetched other bytes")
	}
	st := f.Stats()
	if st[hosts[0].ID()].Pieces == 0 {
		t.Fatal("the honest holder served nothing")
	}
	if st[stalled.ID()].Pieces != 0 {
		t.Fatal("the stalled holder is booked as having served")
	}
}

// TestBusyHolderIsAskedAgain: the only holder of a piece answers busy
// twice and then serves it; the fetch waits and gets it rather than
// failing as not found.
func TestBusyHolderIsAskedAgain(t *testing.T) {
	store, cids := newPieces(1, 1000)
	var asked atomic.Int32
	h := fakeHolder(t, func(str network.Stream, id uint64, c []byte) {
		if asked.Add(1) <= 2 {
			str.Write(frame(t, []any{id, uint64(exchange.StatusBusy), uint64(0), nil}))
			return
		}
		b, _ := store.GetPiece(context.Background(), cids[0])
		str.Write(frame(t, []any{id, uint64(exchange.StatusOK), uint64(len(b)), nil}))
		str.Write(b)
	})
	cli := newHost(t)
	connect(t, cli, h)
	f := newFetcher(t, cli, exchange.FetcherOptions{})
	defer f.Close()
	f.AddHolders(h.ID())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := f.GetPiece(ctx, cids[0]); err != nil {
		t.Fatalf("after two busy answers: %v", err)
	}
	if n := asked.Load(); n != 3 {
		t.Fatalf("holder asked %d times, want 3", n)
	}
}

// TestDialFailureIsNotForever: a request whose short context ends while
// the holder is still being dialled (its connections open 100 ms late)
// does not fail the holder for the next request, which is served.
func TestDialFailureIsNotForever(t *testing.T) {
	store, cids := newPieces(1, 1000)
	srv, cli := newHost(t), newHost(t)
	server, err := exchange.NewServer(srv, store, exchange.DefaultServerOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	cli.Peerstore().AddAddr(srv.ID(), slowProxy(t, srv, 100*time.Millisecond), time.Hour)
	f := newFetcher(t, cli, exchange.FetcherOptions{})
	defer f.Close()
	f.AddHolders(srv.ID())
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := f.GetPiece(short, cids[0]); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a request that ends before the holder's connection opens: %v", err)
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if _, err := f.GetPiece(ctx, cids[0]); err != nil {
		t.Fatalf("the request after one that gave up: %v", err)
	}
}

// slowProxy forwards TCP connections to h's loopback TCP address, each
// after delay; it returns its own address for h.
func slowProxy(t *testing.T, h host.Host, delay time.Duration) ma.Multiaddr {
	t.Helper()
	var target string
	for _, a := range h.Addrs() {
		if na, err := manet.ToNetAddr(a); err == nil && na.Network() == "tcp" {
			target = na.String()
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				time.Sleep(delay) // the connection's slow start is the point
				out, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer out.Close()
				go io.Copy(out, in)
				io.Copy(in, out)
			}()
		}
	}()
	a, err := manet.FromNetAddr(ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// readerStore is a pieceStore that reads into the caller's buffer and
// tells sizes, as the real store does.
type readerStore struct{ *pieceStore }

func (s readerStore) ReadPiece(ctx context.Context, c cid.Cid, buf []byte) ([]byte, error) {
	b, err := s.GetPiece(ctx, c)
	if err != nil {
		return nil, err
	}
	if cap(buf) < len(b) {
		buf = make([]byte, len(b))
	}
	return append(buf[:0], b...), nil
}

func (s readerStore) PieceSize(c cid.Cid) (int, error) {
	b, err := s.GetPiece(context.Background(), c)
	return len(b), err
}

// TestServeMemoryIsBounded: four peers, four streams each, pipelining
// requests for 1 MiB pieces and reading none of the bodies, get as many
// buffers as the server's memory budget holds and busy answers past it.
func TestServeMemoryIsBounded(t *testing.T) {
	store, cids := newPieces(32, 1<<20)
	opts := exchange.DefaultServerOptions()
	opts.ServeMemory = 8 << 20
	srv := newHost(t)
	server, err := exchange.NewServer(srv, readerStore{store}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var ok, busy int
	for range 4 {
		cli := newHost(t)
		connect(t, cli, srv)
		for range 4 {
			str, err := cli.NewStream(ctx, srv.ID(), exchange.ProtocolID("default"))
			if err != nil {
				t.Fatal(err)
			}
			defer str.Reset()
			for i := range 8 {
				str.Write(frame(t, []any{uint64(exchange.TypeGet), uint64(i), cids[i].Bytes(), uint64(0), uint64(0), []byte{}, []byte{}, []byte{}, false}))
			}
			str.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, st, _, err := exchange.ReadResponseHeaderForTest(bufio.NewReader(str))
			switch {
			case err != nil:
				t.Fatalf("first response: %v", err)
			case st == exchange.StatusOK:
				ok++
			case st == exchange.StatusBusy:
				busy++
			default:
				t.Fatalf("first response %v", st)
			}
			if used := server.MemoryInUse(); used > opts.ServeMemory {
				t.Fatalf("server holds %d bytes of buffers, over its budget of %d", used, opts.ServeMemory)
			}
		}
	}
	if ok == 0 || busy == 0 || ok > 8 {
		t.Fatalf("%d streams served, %d refused busy: want some of each, at most 8 served", ok, busy)
	}
	t.Logf("%d streams served, %d busy; %d bytes held", ok, busy, server.MemoryInUse())
}
