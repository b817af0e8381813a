package exchange

import (
	"time"

	"github.com/libp2p/go-libp2p/core/protocol"
)

// ProtocolID is the exchange protocol of a cluster: each cluster is its own
// network, so its transfers never meet another cluster's. Version 1.2.0
// requests name the bucket they read in and carry a grant token's chain
// for it with a proof, bound to the holder asked, that the requester holds
// the grant's key; responses say which bucket a piece was served for.
// Earlier versions, whose requests carried tokens anyone who saw them
// could reuse, are not spoken.
func ProtocolID(cluster string) protocol.ID {
	return protocol.ID("/ddc/" + cluster + "/exchange/1.2.0")
}

// Request types.
const (
	// TypeGet asks for a piece or a byte range of it.
	TypeGet = 1
)

// Status of a response.
type Status uint8

// Response statuses. Only StatusOK carries bytes.
const (
	StatusOK         Status = 0
	StatusNotFound   Status = 1 // the server does not hold the piece
	StatusTooLarge   Status = 2 // the range or piece is over the server's limit
	StatusBusy       Status = 3 // the server is at its work limit; try another holder
	StatusBadRequest Status = 4 // malformed CID, bad range or unknown type
	StatusError      Status = 5 // the server failed to read the piece (corrupt, I/O)
	// StatusDenied refuses a piece of a private bucket: no grant, or one
	// that does not allow the request. Its body, up to maxReason bytes,
	// says why in words.
	StatusDenied Status = 6
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusNotFound:
		return "not found"
	case StatusTooLarge:
		return "too large"
	case StatusBusy:
		return "busy"
	case StatusBadRequest:
		return "bad request"
	case StatusError:
		return "server error"
	case StatusDenied:
		return "denied"
	}
	return "unknown status"
}

const (
	// maxRequestFrame caps a request: a CID is under 100 bytes, with room
	// for the fields; then a bucket ID, a token and a proof.
	maxRequestFrame = 256 + 32 + MaxToken + MaxProof
	// MaxToken caps the token a request carries: the bucket package's
	// limit on a token's text.
	MaxToken = 4096
	// MaxProof caps a request's proof: an ed25519 signature.
	MaxProof = 64
	// maxReason caps the words of a denial.
	maxReason = 512
	// maxResponseFrame caps a response header: with a bucket ID.
	maxResponseFrame = 128

	// DefaultIdleTimeout closes a server stream that sends no request for
	// this long, so abandoned streams do not pin server memory.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultWriteTimeout bounds writing one response: a reader that stops
	// reading cannot hold a server goroutine forever.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultStreamsPerPeer is how many exchange streams one peer may hold
	// open on a server; a fetcher needs one per holder.
	DefaultStreamsPerPeer = 4
	// DefaultConcurrentReads bounds the piece reads a server runs at once,
	// over all peers; past it requests are answered busy.
	DefaultConcurrentReads = 64
	// DefaultServeMemory bounds the piece buffers a server holds over all
	// its streams and peers (each stream keeps serveDepth+2 of them, as
	// large as the pieces it serves); past it requests are answered busy.
	// 256 MiB serves some fifty streams of 1 MiB pieces at full depth.
	DefaultServeMemory = 256 << 20
	// DefaultWindow is how many requests a Session keeps in flight: enough
	// to keep a 1 GB/s link busy with 1 MiB pieces across a few ms of RTT.
	DefaultWindow = 16
)
