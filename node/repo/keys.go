package repo

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/ddc-project/ddc/bucket"
)

// The keystore: account keys in the repo's keys/ folder (0700), one file
// per key named NAME.key (0600) holding the 32-byte ed25519 seed. The
// node's own identity is the account named SelfKey.

// SelfKey names the node's identity as an account.
const SelfKey = "self"

const (
	keysDir      = "keys"
	keySuffix    = ".key"
	secretPrefix = "ddcsk1" // the text form of an exported key
)

var (
	// ErrKeyExists means a key of that name is already in the keystore.
	ErrKeyExists = errors.New("key already exists")
	// ErrNoKey means the keystore has no key of that name.
	ErrNoKey = errors.New("no such key")
	// ErrBadKeyName means a key name that cannot be one.
	ErrBadKeyName = errors.New("bad key name")
)

// KeyInfo is a key's name and account.
type KeyInfo struct {
	Name   string           `json:"name"`
	Public bucket.PublicKey `json:"public"`
}

// Keystore is the repo's keys. It needs no open store: keys are read and
// written beside a running node.
type Keystore struct{ path string }

// Keys returns the keystore of the repo at path.
func Keys(path string) (Keystore, error) {
	if !IsInitialized(path) {
		return Keystore{}, fmt.Errorf("%w at %s (run 'ddc init --repo %s')", ErrNotInitialized, path, path)
	}
	return Keystore{path}, nil
}

// CheckKeyName reports why name cannot name a key: 1 to 64 lowercase
// letters, digits, '-' or '_', and not SelfKey.
func CheckKeyName(name string) error {
	if name == SelfKey {
		return fmt.Errorf("%w: %q is the node's identity", ErrBadKeyName, name)
	}
	if len(name) == 0 || len(name) > 64 {
		return fmt.Errorf("%w: %.70q has %d bytes, want 1 to 64", ErrBadKeyName, name, len(name))
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: %.70q (use lowercase letters, digits, '-' or '_')", ErrBadKeyName, name)
		}
	}
	return nil
}

func (k Keystore) file(name string) string {
	return filepath.Join(k.path, keysDir, name+keySuffix)
}

// Generate makes a new key called name.
func (k Keystore) Generate(name string) (bucket.PublicKey, error) {
	key, err := bucket.NewKey()
	if err != nil {
		return bucket.PublicKey{}, err
	}
	return key.Public(), k.store(name, key)
}

// store writes key as name, atomically and never over another key.
func (k Keystore) store(name string, key bucket.PrivateKey) error {
	if err := CheckKeyName(name); err != nil {
		return err
	}
	dir := filepath.Join(k.path, keysDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	tmp, err := writeTemp(dir, name, key.Seed(), 0o600)
	if err != nil {
		return fmt.Errorf("keystore: write %s: %w", name, err)
	}
	defer os.Remove(tmp)
	// A hard link never replaces: a key of that name stays as it was.
	if err := os.Link(tmp, k.file(name)); errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %s (in %s)", ErrKeyExists, name, dir)
	} else if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	return syncDirOf(k.file(name))
}

// readFile reads path: a missing file is the error missing, another
// failure is said to be of what.
func readFile(path string, missing error, what string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, missing
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}

func syncDirOf(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Get returns the key called name; SelfKey is the node's identity.
func (k Keystore) Get(name string) (bucket.PrivateKey, error) {
	if name == SelfKey {
		return k.self()
	}
	if err := CheckKeyName(name); err != nil {
		return bucket.PrivateKey{}, err
	}
	b, err := readFile(k.file(name), fmt.Errorf("%w: %s (see 'ddc key ls')", ErrNoKey, name), "keystore")
	if err != nil {
		return bucket.PrivateKey{}, err
	}
	key, err := bucket.KeyFromSeed(b)
	if err != nil {
		return key, fmt.Errorf("%w: key file %s: %w", ErrConfig, k.file(name), err)
	}
	return key, nil
}

// self is the node's identity key as an account.
func (k Keystore) self() (bucket.PrivateKey, error) {
	_, id, err := load(k.path)
	if err != nil {
		return bucket.PrivateKey{}, err
	}
	return AccountOf(id)
}

// AccountOf is the account of a node's ed25519 identity key.
func AccountOf(id crypto.PrivKey) (bucket.PrivateKey, error) {
	raw, err := id.Raw()
	if err != nil || id.Type() != crypto.Ed25519 || len(raw) < 32 {
		return bucket.PrivateKey{}, fmt.Errorf("%w: the identity is not an ed25519 key", ErrConfig)
	}
	return bucket.KeyFromSeed(raw[:32])
}

// List returns the node's identity, then every key by name.
func (k Keystore) List() ([]KeyInfo, error) {
	self, err := k.self()
	if err != nil {
		return nil, err
	}
	out := []KeyInfo{{SelfKey, self.Public()}}
	ents, err := os.ReadDir(filepath.Join(k.path, keysDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	var names []string
	for _, e := range ents {
		if name, ok := strings.CutSuffix(e.Name(), keySuffix); ok && CheckKeyName(name) == nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		key, err := k.Get(name)
		if err != nil {
			return nil, err
		}
		out = append(out, KeyInfo{name, key.Public()})
	}
	return out, nil
}

// Export returns the key called name in its text form, "ddcsk1" and the
// seed in base64url: a secret, to move the account to another repo.
func (k Keystore) Export(name string) (string, error) {
	key, err := k.Get(name)
	if err != nil {
		return "", err
	}
	return secretPrefix + base64.RawURLEncoding.EncodeToString(key.Seed()), nil
}

// Import stores the exported key text as name.
func (k Keystore) Import(name, text string) (bucket.PublicKey, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(text), secretPrefix)
	seed, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if !ok || err != nil || len(seed) != 32 {
		return bucket.PublicKey{}, fmt.Errorf("%w: not an exported key (want %s and 43 base64url letters)", bucket.ErrBadKey, secretPrefix)
	}
	key, err := bucket.KeyFromSeed(seed)
	if err != nil {
		return bucket.PublicKey{}, err
	}
	return key.Public(), k.store(name, key)
}

// Owned returns the key of the account pub when the keystore holds it
// (the node's identity included); ok is false when it does not.
func (k Keystore) Owned(pub bucket.PublicKey) (key bucket.PrivateKey, ok bool, err error) {
	infos, err := k.List()
	if err != nil {
		return key, false, err
	}
	for _, ki := range infos {
		if ki.Public != pub {
			continue
		}
		key, err = k.Get(ki.Name)
		return key, err == nil, err
	}
	return key, false, nil
}

// AccountOfPeer is the account of a peer's key, which its ID holds (an
// ed25519 peer ID inlines the key).
func AccountOfPeer(p peer.ID) (bucket.PublicKey, error) {
	pk, err := p.ExtractPublicKey()
	if err != nil {
		return bucket.PublicKey{}, fmt.Errorf("%w: peer %s: no key in its ID: %w", bucket.ErrBadKey, p, err)
	}
	raw, err := pk.Raw()
	if err != nil {
		return bucket.PublicKey{}, fmt.Errorf("%w: peer %s: %w", bucket.ErrBadKey, p, err)
	}
	return bucket.PublicKeyFromBytes(raw)
}
