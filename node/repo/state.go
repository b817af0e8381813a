package repo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	stateFile = "node.json"
	peersFile = "peers.json"
	// socketFile is the node's copy socket. A Unix socket path must fit
	// in 108 bytes; a repo deeper than that gets no socket.
	socketFile = "api.sock"
)

// State is what a running node tells other processes about itself: the
// CLI finds the API there, people and scripts the addresses it bound.
type State struct {
	PID     int      `json:"pid"`
	PeerID  string   `json:"peer_id"`
	Cluster string   `json:"cluster"`
	API     string   `json:"api"`               // host:port of the HTTP API
	Socket  string   `json:"socket,omitempty"`  // the copy socket (see api.Server.ListenCopy)
	Gateway string   `json:"gateway,omitempty"` // host:port of the HTTP gateway, when on
	Addrs   []string `json:"addrs"`             // listen addresses actually bound
}

// SocketPath is where a node on the repo at path listens for copies.
func SocketPath(path string) string { return filepath.Join(path, socketFile) }

// WriteState records the running node's state in the repo.
func (r *Repo) WriteState(s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(r.Path, stateFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write node state: %w", err)
	}
	return nil
}

// RemoveState removes the state file when the node stops.
func (r *Repo) RemoveState() error {
	err := os.Remove(filepath.Join(r.Path, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// ReadState reads the state a node running on the repo at path wrote. It
// fails with fs.ErrNotExist when no node has written one; a node that was
// killed leaves a stale one, which callers detect by trying the API.
func ReadState(path string) (State, error) {
	var s State
	b, err := os.ReadFile(filepath.Join(path, stateFile))
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%w: %s: %w", ErrConfig, filepath.Join(path, stateFile), err)
	}
	return s, nil
}

// savedPeer is one routing-table peer as peers.json keeps it.
type savedPeer struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

// SavePeers keeps the DHT routing table's peers for the next start.
func (r *Repo) SavePeers(ps []peer.AddrInfo) error {
	out := make([]savedPeer, 0, len(ps))
	for _, p := range ps {
		sp := savedPeer{ID: p.ID.String()}
		for _, a := range p.Addrs {
			sp.Addrs = append(sp.Addrs, a.String())
		}
		out = append(out, sp)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(r.Path, peersFile), append(b, '\n'), 0o600)
}

// LoadPeers reads the peers SavePeers kept. A missing file is no peers; an
// unreadable entry is skipped, since these are hints, not configuration.
func (r *Repo) LoadPeers() ([]peer.AddrInfo, error) {
	b, err := os.ReadFile(filepath.Join(r.Path, peersFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var saved []savedPeer
	if err := json.Unmarshal(b, &saved); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(r.Path, peersFile), err)
	}
	var out []peer.AddrInfo
	for _, sp := range saved {
		id, err := peer.Decode(sp.ID)
		if err != nil {
			continue
		}
		ai := peer.AddrInfo{ID: id}
		for _, s := range sp.Addrs {
			if a, err := ma.NewMultiaddr(s); err == nil {
				ai.Addrs = append(ai.Addrs, a)
			}
		}
		out = append(out, ai)
	}
	return out, nil
}
