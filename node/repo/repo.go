package repo

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/pieces/store"
)

const (
	configFile   = "config.json"
	identityFile = "identity.key"
	storeDir     = "store"
)

// Repo is an open repository.
type Repo struct {
	Path     string
	Config   Config
	Identity crypto.PrivKey
	Store    *store.Store
}

// DefaultPath is $DDC_PATH, or ~/.ddc.
func DefaultPath() string {
	if p := os.Getenv("DDC_PATH"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".ddc"
	}
	return filepath.Join(home, ".ddc")
}

// IsInitialized reports whether path holds a repo.
func IsInitialized(path string) bool {
	_, err := os.Stat(filepath.Join(path, configFile))
	return err == nil
}

// Init creates a repo at path with cfg and a new identity key. The config
// file is written last, so a repo whose Init was interrupted is not taken
// for one and can be initialised again.
func Init(path string, cfg Config) (peer.ID, error) {
	if IsInitialized(path) {
		return "", fmt.Errorf("%w at %s", ErrExists, path)
	}
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return "", fmt.Errorf("create repo: %w", err)
	}
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return "", fmt.Errorf("generate identity: %w", err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("derive peer ID: %w", err)
	}
	kb, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("encode identity: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(path, identityFile), kb, 0o600); err != nil {
		return "", fmt.Errorf("write identity: %w", err)
	}
	if err := makeSecret(path); err != nil {
		return "", err
	}
	s, err := store.Open(filepath.Join(path, storeDir), cfg.storeOptions())
	if err != nil {
		return "", err
	}
	if err := s.Close(); err != nil {
		return "", err
	}
	cfg.PeerID = id.String()
	cb, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(path, configFile), append(cb, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	return id, nil
}

// Open opens the repo at path for reading and writing; only one process
// at a time can. logger may be nil.
func Open(path string, logger *slog.Logger) (*Repo, error) {
	return open(path, logger, false, nil)
}

// OpenEdited is Open with edit applied to the config read from disk
// before anything uses it, the store's options included, and the result
// validated: a run's flags over the file, which stays as it is.
func OpenEdited(path string, logger *slog.Logger, edit func(*Config) error) (*Repo, error) {
	return open(path, logger, false, edit)
}

// OpenReadOnly opens the repo at path for reading: any number of readers
// at once (none beside a writer), nothing written, so it works on a
// read-only directory. Writes through its store fail with
// store.ErrReadOnly.
func OpenReadOnly(path string, logger *slog.Logger) (*Repo, error) {
	return open(path, logger, true, nil)
}

func open(path string, logger *slog.Logger, readOnly bool, edit func(*Config) error) (r *Repo, err error) {
	cfg, key, err := load(path)
	if err != nil {
		return nil, err
	}
	if edit != nil {
		if err := edit(&cfg); err != nil {
			return nil, err
		}
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
	}
	if !readOnly {
		if err := ensureSecret(path); err != nil {
			return nil, err
		}
	}
	opts := cfg.storeOptions()
	opts.Logger, opts.ReadOnly = logger, readOnly
	s, err := store.Open(filepath.Join(path, storeDir), opts)
	if err != nil {
		return nil, err
	}
	return &Repo{Path: path, Config: cfg, Identity: key, Store: s}, nil
}

// Identity reads the repo's config and peer ID without opening its store,
// so it never stands in the way of a node starting on the repo.
func Identity(path string) (Config, peer.ID, error) {
	cfg, key, err := load(path)
	if err != nil {
		return cfg, "", err
	}
	id, err := peer.IDFromPrivateKey(key)
	return cfg, id, err
}

// load reads the config and the identity key.
func load(path string) (Config, crypto.PrivKey, error) {
	cfg, err := readConfig(filepath.Join(path, configFile))
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil, fmt.Errorf("%w at %s (run 'ddc init --repo %s')", ErrNotInitialized, path, path)
	}
	if err != nil {
		return cfg, nil, err
	}
	kb, err := os.ReadFile(filepath.Join(path, identityFile))
	if err != nil {
		return cfg, nil, fmt.Errorf("read identity: %w", err)
	}
	key, err := crypto.UnmarshalPrivateKey(kb)
	if err != nil {
		return cfg, nil, fmt.Errorf("%w: identity %s: %w", ErrConfig, filepath.Join(path, identityFile), err)
	}
	return cfg, key, nil
}

// PeerID is the node's identity.
func (r *Repo) PeerID() peer.ID {
	id, _ := peer.IDFromPrivateKey(r.Identity) // checked at Open
	return id
}

// Close closes the store.
func (r *Repo) Close() error { return r.Store.Close() }
