package api

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"syscall"

	"github.com/ddc-project/ddc/pieces"
)

// Error codes in JSON error bodies and the X-Ddc-Error trailer.
const (
	CodeUsage    = "usage"     // a malformed CID, option or request
	CodeNotFound = "not_found" // no such file or piece, here or on the network
	CodeCorrupt  = "corrupt"   // bytes that fail their hash or checksum
	CodeIO       = "io"        // the node's disk failed
	CodeForbid   = "forbidden" // a request a web page may have made
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
	}
	return nil
}

// classify maps a node error to its code and HTTP status.
func classify(err error) (string, int) {
	switch {
	case errors.Is(err, ErrForbidden):
		return CodeForbid, http.StatusForbidden
	case errors.Is(err, ErrUsage), errors.Is(err, pieces.ErrInvalidCID),
		errors.Is(err, pieces.ErrUnsupportedHash), errors.Is(err, pieces.ErrInvalidTag), errors.Is(err, pieces.ErrOutOfRange):
		return CodeUsage, http.StatusBadRequest
	case errors.Is(err, pieces.ErrNotFound):
		return CodeNotFound, http.StatusNotFound
	case errors.Is(err, pieces.ErrCorrupt), errors.Is(err, pieces.ErrMalformed):
		return CodeCorrupt, http.StatusUnprocessableEntity
	case errors.As(err, new(*fs.PathError)), errors.As(err, new(syscall.Errno)):
		return CodeIO, http.StatusInternalServerError
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return CodeInternal, http.StatusServiceUnavailable
	}
	return CodeInternal, http.StatusInternalServerError
}

func usagef(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, a...))
}
