package main

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"syscall"

	"github.com/ddc-project/ddc/node/api"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
)

// Exit codes, documented in README.md.
const (
	exitOK       = 0
	exitError    = 1 // anything not listed below
	exitUsage    = 2 // bad flags, arguments, CIDs, tags, hash names
	exitNotFound = 3 // no such piece or file; no repo
	exitCorrupt  = 4 // bytes that fail their checksum or hash, malformed pieces
	exitIO       = 5 // reading input or writing output or the repo failed
)

// usageError marks an error in how ddc was called.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usageErr(err error) error { return usageError{err} }

// exitCode maps an error to the process exit code. It is the one place
// that knows which errors mean what to a caller.
func exitCode(err error) int {
	var ue usageError
	var pe *fs.PathError
	var errno syscall.Errno
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue),
		errors.Is(err, pieces.ErrInvalidCID),
		errors.Is(err, pieces.ErrUnsupportedHash),
		errors.Is(err, pieces.ErrInvalidTag),
		errors.Is(err, pieces.ErrOutOfRange),
		errors.Is(err, api.ErrUsage):
		return exitUsage
	case errors.Is(err, pieces.ErrNotFound), errors.Is(err, repo.ErrNotInitialized):
		return exitNotFound
	case errors.Is(err, pieces.ErrCorrupt), errors.Is(err, pieces.ErrMalformed), errors.Is(err, store.ErrIndexCorrupt):
		return exitCorrupt
	case errors.Is(err, context.Canceled):
		return exitError
	case errors.As(err, &pe), errors.As(err, &errno), errors.Is(err, store.ErrLocked), errors.Is(err, api.ErrIO):
		return exitIO
	}
	return exitError
}

// oneLine keeps an error message on one line, as scripts expect.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
