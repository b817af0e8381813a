package exchange_test

import (
	"context"
	"io"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/ddc-project/ddc/exchange"
)

const benchPieces = 256 // of 1 MiB

// BenchmarkRawStream is the baseline: 256 MiB written on one libp2p stream
// between the same kind of hosts (TCP, Noise, yamux) and read to the end.
func BenchmarkRawStream(b *testing.B) {
	srv, cli := newHost(&testing.T{}), newHost(&testing.T{})
	defer srv.Close()
	defer cli.Close()
	chunk := make([]byte, 1<<20)
	srv.SetStreamHandler("/bench/raw", func(s network.Stream) {
		for range benchPieces {
			if _, err := s.Write(chunk); err != nil {
				s.Reset()
				return
			}
		}
		s.Close()
	})
	connectB(b, cli, srv)
	b.SetBytes(benchPieces << 20)
	for b.Loop() {
		s, err := cli.NewStream(context.Background(), srv.ID(), "/bench/raw")
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.CopyBuffer(io.Discard, s, make([]byte, 1<<20)); err != nil || n != benchPieces<<20 {
			b.Fatal(n, err)
		}
		s.Close()
	}
}

// BenchmarkSessionGet fetches and verifies 256 pieces of 1 MiB over one
// session with the default window.
func BenchmarkSessionGet(b *testing.B) {
	store, cids := newPieces(benchPieces, 1<<20)
	srv, cli := newHost(&testing.T{}), newHost(&testing.T{})
	defer srv.Close()
	defer cli.Close()
	server, err := exchange.NewServer(srv, store, exchange.DefaultServerOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer server.Close()
	connectB(b, cli, srv)
	s, err := exchange.Dial(context.Background(), cli, srv.ID(), "default", 0)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.SetBytes(benchPieces << 20)
	ctx := context.Background()
	for b.Loop() {
		// Keep the window full: issue every request, then collect.
		results := make(chan error, len(cids))
		for _, c := range cids {
			go func() { _, err := s.Get(ctx, c); results <- err }()
		}
		for range cids {
			if err := <-results; err != nil {
				b.Fatal(err)
			}
		}
	}
}
