package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ddc-project/ddc/internal/p2ptest"
	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
)

func start(t *testing.T, path string) *node.Node {
	t.Helper()
	if !repo.IsInitialized(path) {
		if _, err := repo.Init(path, p2ptest.NodeConfig()); err != nil {
			t.Fatal(err)
		}
	}
	r, err := repo.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(r, node.Options{FindTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A lone node reads what it holds without the network, fails fast on what
// it does not, and keeps its identity across a restart.
func TestLoneNode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "repo")
	n := start(t, path)
	data := bytes.Repeat([]byte("lone node "), 300_000)
	res, err := n.Put(context.Background(), bytes.NewReader(data), pieces.DefaultBuildOptions())
	if err != nil {
		t.Fatal(err)
	}
	r, err := n.Open(context.Background(), res.Root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes: %v", len(got), err)
	}
	r.Close()

	other, _ := pieces.ParseCID("bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	t0 := time.Now()
	if _, err := n.Open(context.Background(), other); !errors.Is(err, pieces.ErrNotFound) {
		t.Fatalf("open of an unheld CID: %v", err)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Fatalf("not found took %s", d)
	}

	id := n.ID()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	n = start(t, path)
	defer n.Close()
	if n.ID() != id {
		t.Fatalf("peer ID %s after restart, %s before", n.ID(), id)
	}
	if st, err := n.Stat(context.Background(), res.Root); err != nil || st.Size != uint64(len(data)) {
		t.Fatalf("stat after restart: %+v, %v", st, err)
	}
}

// TestCorruptLocalCopyIsReportedAsCorrupt: a piece that fails its checksum
// on disk, with no holder on the network to replace it, is reported as
// corrupt, naming the piece, not as not found.
func TestCorruptLocalCopyIsReportedAsCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "repo")
	n := start(t, path)
	defer n.Close()
	data := bytes.Repeat([]byte("corrupt me "), 300_000)
	res, err := n.Put(context.Background(), bytes.NewReader(data), pieces.DefaultBuildOptions())
	if err != nil {
		t.Fatal(err)
	}
	blk := filepath.Join(path, "store", "blocks", "00000001.blk")
	raw, err := os.ReadFile(blk)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(data)/2] ^= 0xff
	if err := os.WriteFile(blk, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := n.Open(context.Background(), res.Root)
	if err == nil {
		_, err = io.ReadAll(r)
		r.Close()
	}
	var ce *pieces.CorruptError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), ce.CID.String()) {
		t.Fatalf("read over a corrupt local piece: %v", err)
	}
}

// TestStartRefusesOptionsOutOfRange: options out of range are errors that
// name them, not silently replaced by defaults; zero values are the
// defaults.
func TestStartRefusesOptionsOutOfRange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "repo")
	if _, err := repo.Init(path, p2ptest.NodeConfig()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opts node.Options
		want string
	}{
		{node.Options{FindTimeout: -time.Second}, "find timeout"},
		{node.Options{ReadAhead: -1}, "read-ahead -1"},
		{node.Options{ReadAhead: node.MaxReadAhead + 1}, "read-ahead 1025"},
	} {
		r, err := repo.Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := node.Start(r, tc.opts)
		if err == nil {
			n.Close()
			t.Fatalf("Start with %+v succeeded", tc.opts)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("Start with %+v: %v, want an error about %q", tc.opts, err, tc.want)
		}
		r.Close()
	}
	r, err := repo.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(r, node.Options{})
	if err != nil {
		t.Fatalf("Start with zero options: %v", err)
	}
	n.Close()
}
