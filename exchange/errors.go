package exchange

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

var (
	// ErrBusy means the holder is at its work limit.
	ErrBusy = errors.New("holder busy")
	// ErrBadRequest means the holder refused the request as malformed.
	ErrBadRequest = errors.New("bad request")
	// ErrProtocol means the holder broke the protocol (a malformed or
	// unexpected response); the session is unusable.
	ErrProtocol = errors.New("exchange protocol violation")
	// ErrServer means the holder failed to read the piece it holds.
	ErrServer = errors.New("holder failed to read the piece")
	// ErrClosed means the session was closed.
	ErrClosed = errors.New("session closed")
	// ErrStalled means the holder stopped sending within a response's
	// deadline: it is dropped and its requests go elsewhere.
	ErrStalled = errors.New("holder stalled")
	// ErrGone means the holder's stream or connection ended while a
	// response was due: it stopped, or dropped this peer.
	ErrGone = errors.New("holder went away mid-transfer")
	// ErrAbandoned means this side reset the session because a caller
	// gave up on a response the holder was still sending; the holder is
	// not at fault.
	ErrAbandoned = errors.New("session reset: a caller gave up mid-response")
)

// ErrDenied is what a DeniedError wraps: a holder refused a piece of a
// private bucket for want of a grant that allows the request.
var ErrDenied = errors.New("denied")

// DeniedError is a holder's refusal to serve a piece, in its own words
// ("bucket B is private: no grant", "grant expired at …").
type DeniedError struct {
	CID    cid.Cid
	Reason string
}

func (e *DeniedError) Error() string { return fmt.Sprintf("%s denied: %s", e.CID, e.Reason) }

// Unwrap gives ErrDenied.
func (e *DeniedError) Unwrap() error { return ErrDenied }

// printable keeps a peer's words to one line of printable text.
func printable(b []byte) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, strings.ToValidUTF8(string(b), "?"))
}

// PeerError says which holder an error came from.
type PeerError struct {
	Peer peer.ID
	Err  error
}

func (e *PeerError) Error() string { return fmt.Sprintf("peer %s: %v", e.Peer, e.Err) }

// Unwrap gives the cause.
func (e *PeerError) Unwrap() error { return e.Err }
