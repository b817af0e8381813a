package repo

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/pnet"
)

// SwarmKeyFile is where a repo keeps its cluster's swarm key.
const SwarmKeyFile = "swarm.key"

// ErrBadSwarmKey means a swarm key file that is not one.
var ErrBadSwarmKey = errors.New("bad swarm key")

// NewSwarmKey returns a new random swarm key in the file format libp2p
// and IPFS use: "/key/swarm/psk/1.0.0/", "/base16/", 64 hex digits.
func NewSwarmKey() ([]byte, error) {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "/key/swarm/psk/1.0.0/\n/base16/\n%s\n", hex.EncodeToString(k[:])), nil
}

// ParseSwarmKey reads a swarm key file's text; name says where it is from.
func ParseSwarmKey(text []byte, name string) (pnet.PSK, error) {
	psk, err := pnet.DecodeV1PSK(bytes.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v (want the format 'ddc cluster key gen' writes)", ErrBadSwarmKey, name, err)
	}
	if len(psk) != 32 {
		return nil, fmt.Errorf("%w: %s: %d bytes, want 32", ErrBadSwarmKey, name, len(psk))
	}
	return psk, nil
}

// InstallSwarmKey checks the swarm key text and writes it into the repo at
// path (created if need be), for Init to name in the config.
func InstallSwarmKey(path string, text []byte, from string) error {
	if _, err := ParseSwarmKey(text, from); err != nil {
		return err
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return fmt.Errorf("create repo: %w", err)
	}
	return writeFileAtomic(filepath.Join(path, SwarmKeyFile), text, 0o600)
}

// SwarmKey is the repo's swarm key, nil when its cluster is open.
func (r *Repo) SwarmKey() (pnet.PSK, error) {
	name := r.Config.Network.SwarmKey
	if name == "" {
		return nil, nil
	}
	if !filepath.IsAbs(name) {
		name = filepath.Join(r.Path, name)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("%w: swarm key: %w", ErrConfig, err)
	}
	return ParseSwarmKey(b, name)
}
