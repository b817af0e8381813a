package exchange

import (
	"errors"
	"fmt"

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

// PeerError says which holder an error came from.
type PeerError struct {
	Peer peer.ID
	Err  error
}

func (e *PeerError) Error() string { return fmt.Sprintf("peer %s: %v", e.Peer, e.Err) }

// Unwrap gives the cause.
func (e *PeerError) Unwrap() error { return e.Err }
