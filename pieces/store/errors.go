package store

import "errors"

var (
	// ErrClosed is returned by calls on a closed Store or a finished Tx.
	ErrClosed = errors.New("store closed")
	// ErrReadOnly is returned by writes to a store opened read-only.
	ErrReadOnly = errors.New("store is open read-only")
	// ErrLocked means another process has the store open.
	ErrLocked = errors.New("store is in use by another process")
	// ErrVersion means the on-disk format is not the one this build reads.
	ErrVersion = errors.New("unsupported store format version")
	// ErrIndexCorrupt means an index record does not decode.
	ErrIndexCorrupt = errors.New("corrupt store index")
	// ErrIndexMissing means block files hold data that the index has no
	// record of: the index was lost, moved or replaced. Open then changes
	// nothing.
	ErrIndexMissing = errors.New("store index missing")
	// ErrIndexStale means the tag index must be rebuilt before a search,
	// and the store is open read-only.
	ErrIndexStale = errors.New("tag index not built")

	// errWouldBlock is lockFile's answer when another process holds the lock.
	errWouldBlock = errors.New("lock held elsewhere")
)
