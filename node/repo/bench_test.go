package repo_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
)

// benchDir is where benchmark repos live: tmpfs when there is one, so the
// figures measure ddc rather than the disk.
func benchDir(b *testing.B) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "ddc-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	return b.TempDir()
}

func openBenchRepo(b *testing.B, dir string) *repo.Repo {
	b.Helper()
	p := filepath.Join(dir, "repo")
	if _, err := repo.Init(p, repo.DefaultConfig()); err != nil {
		b.Fatal(err)
	}
	r, err := repo.Open(p, nil)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

func closeBenchRepo(b *testing.B, r *repo.Repo) {
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.RemoveAll(r.Path); err != nil {
		b.Fatal(err)
	}
}

const benchSize = 256 << 20

func benchData() []byte {
	data := make([]byte, benchSize)
	rand.NewChaCha8([32]byte{9}).Read(data)
	return data
}

// BenchmarkPut puts 256 MiB into a new repo each iteration, removing the
// previous one first, so each put writes into memory the kernel recycles.
func BenchmarkPut(b *testing.B) {
	data := benchData()
	dir := benchDir(b)
	b.SetBytes(benchSize)
	for b.Loop() {
		b.StopTimer()
		r := openBenchRepo(b, dir)
		b.StartTimer()
		if _, err := r.Put(context.Background(), bytes.NewReader(data), pieces.DefaultBuildOptions()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		closeBenchRepo(b, r)
		b.StartTimer()
	}
}

func BenchmarkCat(b *testing.B) {
	r := openBenchRepo(b, benchDir(b))
	defer closeBenchRepo(b, r)
	res, err := r.Put(context.Background(), bytes.NewReader(benchData()), pieces.DefaultBuildOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	for b.Loop() {
		f, err := r.OpenFile(context.Background(), res.Root)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := f.WriteTo(io.Discard); err != nil || n != benchSize {
			b.Fatal(n, err)
		}
	}
}
