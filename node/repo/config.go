package repo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ddc-project/ddc/pieces/store"
)

// ConfigVersion is the config format this build writes.
const ConfigVersion = 1

// Config is the repo's config.json.
type Config struct {
	Version int         `json:"version"`
	PeerID  string      `json:"peer_id"` // derived from identity.key, for people to read
	Store   StoreConfig `json:"store"`
}

// StoreConfig configures the piece store.
type StoreConfig struct {
	BlockSize int64 `json:"block_size"` // bytes at which a block file is sealed
	// BufferedIO writes block data through the page cache instead of with
	// O_DIRECT (which the store uses where the filesystem supports it).
	BufferedIO bool `json:"buffered_io,omitempty"`
}

// DefaultConfig returns the config Init writes unless told otherwise.
func DefaultConfig() Config {
	return Config{Version: ConfigVersion, Store: StoreConfig{BlockSize: store.DefaultBlockSize}}
}

// Validate reports the first bad value.
func (c Config) Validate() error {
	if c.Version != ConfigVersion {
		return fmt.Errorf("%w: version %d, this ddc reads %d", ErrConfig, c.Version, ConfigVersion)
	}
	if err := c.storeOptions().Validate(); err != nil {
		return fmt.Errorf("%w: store: %v", ErrConfig, err)
	}
	return nil
}

func (c Config) storeOptions() store.Options {
	o := store.DefaultOptions()
	o.BlockSize = c.Store.BlockSize
	o.DirectIO = !c.Store.BufferedIO
	return o
}

func readConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var c Config
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// writeFileAtomic writes data to path through a synced temporary file and a
// rename, so a crash leaves the old file or the new one, never a mix.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
