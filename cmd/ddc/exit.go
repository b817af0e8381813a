package main

import (
	"strings"

	"github.com/ddc-project/ddc/node/api"
)

// Exit codes, documented in README.md.
const (
	exitOK       = 0
	exitError    = 1 // anything not listed below
	exitUsage    = 2 // bad flags, arguments, CIDs, tags, hash names
	exitNotFound = 3 // no such piece or file; no repo
	exitCorrupt  = 4 // bytes that fail their checksum or hash, malformed pieces
	exitIO       = 5 // reading input or writing output or the repo failed
	exitDenied   = 6 // a private bucket without a grant, or one that does not allow it
	exitQuota    = 7 // a put the store's storage_max has no room for
)

// usageError marks an error in how ddc was called; it is an api.ErrUsage.
type usageError struct{ err error }

func (u usageError) Error() string        { return u.err.Error() }
func (u usageError) Unwrap() error        { return u.err }
func (u usageError) Is(target error) bool { return target == api.ErrUsage }

func usageErr(err error) error { return usageError{err} }

// exitCode maps an error to the process exit code, through the table the
// API's statuses come from (api.Classify). A cancelled command (Ctrl-C)
// exits 1.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	return api.Classify(err).Exit
}

// oneLine keeps an error message on one line, as scripts expect.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
