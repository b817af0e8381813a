package api

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"syscall"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/exchange"
	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
	"github.com/ddc-project/ddc/pieces/store"
	"github.com/ddc-project/ddc/search"
)

// Error codes in JSON error bodies and the X-Ddc-Error trailer.
const (
	CodeUsage    = "usage"     // a malformed CID, option or request
	CodeNotFound = "not_found" // no such file or piece, here or on the network
	CodeCorrupt  = "corrupt"   // bytes that fail their hash or checksum
	CodeIO       = "io"        // the node's disk failed
	CodeForbid   = "forbidden" // a request a web page may have made
	CodeDenied   = "denied"    // a bucket operation without a grant that allows it
	CodeQuota    = "quota"     // a put the store's storage_max has no room for
	CodeIsDir    = "is_dir"    // a directory where a file was asked for
	CodeNotDir   = "not_dir"   // a file where a directory was asked for
	CodeInternal = "error"     // anything else
)

// ErrUsage and ErrIO are what client errors with those codes wrap, so the
// CLI maps them to the same exit codes as offline errors.
var (
	ErrUsage = errors.New("bad request")
	ErrIO    = errors.New("node I/O error")
	// ErrForbidden is a request refused because a web page, not the
	// node's user, may have sent it (see guard).
	ErrForbidden = errors.New("forbidden")
	// ErrDenied is a bucket operation refused for want of a grant.
	ErrDenied = errors.New("denied")
)

// Error is an error the node reported.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"error"`
}

func (e *Error) Error() string { return e.Message }

// Unwrap gives the sentinel of the code.
func (e *Error) Unwrap() error {
	switch e.Code {
	case CodeUsage:
		return ErrUsage
	case CodeNotFound:
		return pieces.ErrNotFound
	case CodeCorrupt:
		return pieces.ErrCorrupt
	case CodeIO:
		return ErrIO
	case CodeForbid:
		return ErrForbidden
	case CodeDenied:
		return ErrDenied
	case CodeQuota:
		return store.ErrQuota
	case CodeIsDir:
		return pieces.ErrIsDir
	case CodeNotDir:
		return pieces.ErrNotDir
	}
	return nil
}

// Class is one kind of failure, as the API reports it (code, HTTP status)
// and as the CLI exits with it. Classify is the one table of them: the
// CLI's exit codes and the API's statuses cannot drift apart.
type Class struct {
	Code   string
	Status int // HTTP status
	Exit   int // the CLI's exit code, documented in README.md
}

// The classes, in the order Classify tries them.
var (
	ClassUsage     = Class{CodeUsage, http.StatusBadRequest, 2}
	ClassNotFound  = Class{CodeNotFound, http.StatusNotFound, 3}
	ClassCorrupt   = Class{CodeCorrupt, http.StatusUnprocessableEntity, 4}
	ClassIO        = Class{CodeIO, http.StatusInternalServerError, 5}
	ClassForbidden = Class{CodeForbid, http.StatusForbidden, 1}
	ClassDenied    = Class{CodeDenied, http.StatusForbidden, 6}
	ClassQuota     = Class{CodeQuota, http.StatusInsufficientStorage, 7}
	ClassIsDir     = Class{CodeIsDir, http.StatusBadRequest, 2}
	ClassNotDir    = Class{CodeNotDir, http.StatusBadRequest, 2}
	ClassCanceled  = Class{CodeInternal, http.StatusServiceUnavailable, 1}
	ClassInternal  = Class{CodeInternal, http.StatusInternalServerError, 1}
)

// Classify says which class err is of; nil is not an error to classify.
func Classify(err error) Class {
	switch {
	case errors.Is(err, ErrForbidden):
		return ClassForbidden
	case errors.Is(err, ErrDenied), errors.Is(err, repo.ErrDenied), errors.Is(err, exchange.ErrDenied), errors.Is(err, node.ErrNotPermitted),
		errors.Is(err, bucket.ErrNoGrant), errors.Is(err, bucket.ErrExpired), errors.Is(err, bucket.ErrWrongBucket),
		errors.Is(err, bucket.ErrNotSubject), errors.Is(err, bucket.ErrOpNotGranted), errors.Is(err, bucket.ErrBadGrant):
		return ClassDenied
	case errors.Is(err, pieces.ErrIsDir):
		return ClassIsDir
	case errors.Is(err, pieces.ErrNotDir):
		return ClassNotDir
	case errors.Is(err, pieces.ErrNoEntry):
		return ClassNotFound
	case errors.Is(err, ErrUsage), errors.Is(err, pieces.ErrInvalidCID), errors.Is(err, pieces.ErrBadName),
		errors.Is(err, pieces.ErrUnsupportedHash), errors.Is(err, pieces.ErrInvalidTag), errors.Is(err, pieces.ErrOutOfRange),
		errors.Is(err, repo.ErrBadKeyName), errors.Is(err, repo.ErrKeyExists), errors.Is(err, bucket.ErrBadKey),
		errors.Is(err, bucket.ErrBadID), errors.Is(err, bucket.ErrMalformed), errors.Is(err, node.ErrOtherCluster),
		errors.Is(err, repo.ErrBadSwarmKey), errors.Is(err, node.ErrTokenWithoutBucket), errors.Is(err, search.ErrBadQuery),
		errors.Is(err, bucket.ErrBadName), errors.Is(err, node.ErrStaleName):
		return ClassUsage
	case errors.Is(err, pieces.ErrNotFound), errors.Is(err, repo.ErrNotInitialized), errors.Is(err, repo.ErrNoKey), errors.Is(err, repo.ErrNoBucket):
		return ClassNotFound
	case errors.Is(err, pieces.ErrCorrupt), errors.Is(err, pieces.ErrMalformed),
		errors.Is(err, store.ErrIndexCorrupt), errors.Is(err, store.ErrIndexMissing):
		return ClassCorrupt
	case errors.Is(err, store.ErrQuota):
		return ClassQuota
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ClassCanceled
	case errors.As(err, new(*fs.PathError)), errors.As(err, new(syscall.Errno)),
		errors.Is(err, ErrIO), errors.Is(err, store.ErrLocked):
		return ClassIO
	}
	return ClassInternal
}

// classify maps a node error to its code and HTTP status.
func classify(err error) (string, int) {
	c := Classify(err)
	return c.Code, c.Status
}

func usagef(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, a...))
}
