package repo_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
)

func TestInitOpenKeepsIdentity(t *testing.T) {
	p := filepath.Join(t.TempDir(), "repo")
	id, err := repo.Init(p, repo.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Init(p, repo.DefaultConfig()); !errors.Is(err, repo.ErrExists) {
		t.Fatalf("second init: %v", err)
	}
	r, err := repo.Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.PeerID() != id || r.Config.PeerID != id.String() {
		t.Fatalf("peer ID %s after open, %s at init", r.PeerID(), id)
	}
	if fi, _ := os.Stat(filepath.Join(p, "identity.key")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity key mode %v", fi.Mode())
	}
	res, err := r.Put(context.Background(), strings.NewReader("content"), pieces.DefaultBuildOptions())
	if err != nil {
		t.Fatal(err)
	}
	var listed []repo.FileInfo
	r.Files(context.Background(), func(fi repo.FileInfo) error { listed = append(listed, fi); return nil })
	if len(listed) != 1 || !listed[0].CID.Equals(res.Root) || listed[0].Size != 7 || listed[0].Err != nil {
		t.Fatalf("files %+v", listed)
	}
	r.Close()
}

func TestOpenMissingWritesNothing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "none")
	_, err := repo.Open(p, nil)
	if !errors.Is(err, repo.ErrNotInitialized) || !strings.Contains(err.Error(), p) {
		t.Fatalf("open missing: %v", err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatal("open of a missing repo created it")
	}
}

func TestBadConfigIsNamed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "repo")
	if _, err := repo.Init(p, repo.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(p, "config.json")
	orig, _ := os.ReadFile(cfg)
	for name, text := range map[string]string{
		"unknown field": `{"version":1,"store":{"block_size":1073741824},"colour":"blue"}`,
		"bad version":   `{"version":7,"store":{"block_size":1073741824}}`,
		"tiny blocks":   `{"version":1,"store":{"block_size":10}}`,
		"not json":      `{`,
	} {
		os.WriteFile(cfg, []byte(text), 0o600)
		_, err := repo.Open(p, nil)
		if !errors.Is(err, repo.ErrConfig) || !strings.Contains(err.Error(), cfg) {
			t.Errorf("%s: %v", name, err)
		}
	}
	os.WriteFile(cfg, orig, 0o600)
	os.WriteFile(filepath.Join(p, "identity.key"), []byte("garbage"), 0o600)
	if _, err := repo.Open(p, nil); !errors.Is(err, repo.ErrConfig) || !strings.Contains(err.Error(), "identity") {
		t.Errorf("bad identity: %v", err)
	}
	if !bytes.Contains(orig, []byte("peer_id")) {
		t.Error("config lacks the peer ID")
	}
}
