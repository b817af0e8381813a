package pieces

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Sentinel errors of the data model. Callers test them with errors.Is; the
// errors returned carry detail (which CID, which field) around them.
var (
	// ErrInvalidCID marks a CID that cannot be parsed or is not one ddc uses.
	ErrInvalidCID = errors.New("invalid CID")
	// ErrUnsupportedHash marks a hash function ddc does not write or verify.
	ErrUnsupportedHash = errors.New("unsupported hash function")
	// ErrMalformed marks descriptor bytes that do not decode under the strict
	// rules: not canonical, unknown fields, trailing bytes, bad values.
	ErrMalformed = errors.New("malformed piece")
	// ErrTooLarge marks a piece or field over its limit.
	ErrTooLarge = errors.New("over size limit")
	// ErrCorrupt marks bytes that do not match the CID or the tree that names
	// them: a hash mismatch, a chunk whose length differs from its link size.
	ErrCorrupt = errors.New("corrupt piece")
	// ErrNotFound marks a piece a Getter does not have.
	ErrNotFound = errors.New("piece not found")
	// ErrInvalidTag marks a tag argument that cannot be parsed.
	ErrInvalidTag = errors.New("invalid tag")
	// ErrOutOfRange marks a byte range that starts past a file's end.
	ErrOutOfRange = errors.New("range out of bounds")
)

// CorruptError says which piece failed verification and why.
type CorruptError struct {
	CID    cid.Cid
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("corrupt piece %s: %s", e.CID, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) hold.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// NotFoundError names the piece a Getter does not have.
type NotFoundError struct{ CID cid.Cid }

func (e *NotFoundError) Error() string { return fmt.Sprintf("piece %s not found", e.CID) }

// Unwrap makes errors.Is(err, ErrNotFound) hold.
func (e *NotFoundError) Unwrap() error { return ErrNotFound }

// malformed wraps a decoding failure of the piece c (undefined when unknown).
func malformed(c cid.Cid, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if c.Defined() {
		return fmt.Errorf("%w %s: %s", ErrMalformed, c, msg)
	}
	return fmt.Errorf("%w: %s", ErrMalformed, msg)
}
