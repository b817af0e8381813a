package store

import (
	"fmt"
	"log/slog"
)

// Options configures a Store. Start from DefaultOptions.
type Options struct {
	// BlockSize is the size at which the active block file is sealed and a
	// new one started. Large blocks mean few files and open descriptors;
	// small ones make compaction finer-grained.
	BlockSize int64
	// DirectIO writes block data with O_DIRECT where the filesystem allows
	// it (see appender); elsewhere the store falls back to buffered writes.
	DirectIO bool
	// ReadOnly opens an existing store for reading only: under a shared
	// lock (other readers may open it too, a writer may not), with nothing
	// written, so it works on a read-only directory. Writes fail with
	// ErrReadOnly.
	ReadOnly bool
	// NoTagIndex stores descriptors without indexing their tags; a store
	// opened later with the index reindexes. For measuring what the index
	// costs, and for stores nobody searches.
	NoTagIndex bool
	// Logger receives recovery and corruption reports; nil discards them.
	Logger *slog.Logger
	// MaxBytes, when not 0, bounds the live bytes: a new piece that would
	// pass it asks the store's MakeRoom (see SetMakeRoom) to free space,
	// then fails with a *QuotaError.
	MaxBytes uint64
}

// DefaultBlockSize seals a block file at 1 GiB.
const DefaultBlockSize = 1 << 30

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{BlockSize: DefaultBlockSize, DirectIO: true}
}

// Validate reports the first option out of range.
func (o Options) Validate() error {
	if o.BlockSize < 1<<20 || o.BlockSize > 1<<40 {
		return fmt.Errorf("block size %d out of range [1 MiB, 1 TiB]", o.BlockSize)
	}
	return nil
}
